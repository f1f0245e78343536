// Package operational owns hookline's operational events: what an operator
// wants to be told (an endpoint disabled, failing or recovered, a pair
// dead-lettered, a DLQ replay finished), their versioned JSON, and the
// forwarder that POSTs them from the operational topic to the operator
// webhook, signed with Standard Webhooks. docs/operational-events.md is
// their reference.
package operational

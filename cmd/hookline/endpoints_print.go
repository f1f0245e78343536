package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookline/hookline/internal/endpoints"
	"github.com/hookline/hookline/signature"
)

// How `hookline endpoints` prints endpoints and rotated secrets.

// printRotation shows the new secret once, in full, with its public key for
// a v1a key.
func printRotation(asJSON bool, e endpoints.Endpoint, fresh string, until time.Time) error {
	out := struct {
		ID            string    `json:"id"`
		Secret        string    `json:"secret"`
		PublicKey     string    `json:"public_key,omitempty"`
		RetiringUntil time.Time `json:"retiring_until,omitzero"`
	}{ID: e.ID, Secret: fresh}
	if signature.Scheme(fresh) == signature.SchemeV1a {
		out.PublicKey, _ = signature.PublicKey(fresh)
	}
	if len(e.RetiringSecrets) > 0 {
		out.RetiringUntil = until
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(out)
	}
	fmt.Printf("endpoint %s: new secret (shown only now): %s\n", e.ID, out.Secret)
	if out.PublicKey != "" {
		fmt.Printf("public key for its receivers: %s\n", out.PublicKey)
	}
	if len(e.RetiringSecrets) > 0 {
		fmt.Printf("the previous secret(s) keep signing until %s, then expire\n", until.Format(time.RFC3339))
	} else {
		fmt.Println("the previous secret(s) stopped signing now")
	}
	return nil
}

// endpointView is an endpoint as printed: with the public keys of its v1a
// signing keys, which its receivers need and which are not secret.
type endpointView struct {
	endpoints.Endpoint
	PublicKeys []string `json:"public_keys,omitempty"`
	// ClientCertSHA256 is the fingerprint of the client certificate.
	ClientCertSHA256 string `json:"client_cert_sha256,omitempty"`
}

func printEndpoints(asJSON, mask bool, eps ...endpoints.Endpoint) error {
	views := make([]endpointView, len(eps))
	for i, e := range eps {
		views[i].PublicKeys = e.PublicKeys()
		views[i].ClientCertSHA256 = e.ClientCertSHA256()
		if mask {
			e = e.Masked()
		}
		// The operator gave the key; no output needs to show it again.
		e.ClientKeyPEM = endpoints.MaskKey(e.ClientKeyPEM)
		views[i].Endpoint = e
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if len(views) == 1 {
			return enc.Encode(views[0])
		}
		return enc.Encode(views)
	}
	return writeEndpointsTable(os.Stdout, views)
}

// writeEndpointsTable prints endpoints as a table, every field escaped
// for the terminal.
func writeEndpointsTable(w io.Writer, views []endpointView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tTENANT\tEVENT TYPES\tENABLED\tSECRETS\tCLIENT CERT")
	for _, v := range views {
		secrets := strings.Join(v.Secrets, " ")
		if n := len(v.RetiringSecrets); n > 0 {
			secrets += fmt.Sprintf(" (+%d retiring)", n)
		}
		cert := "-"
		if v.ClientCertSHA256 != "" {
			cert = "sha256:" + v.ClientCertSHA256[:16] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%s\n", printable(v.ID), printable(v.URL), printable(v.Tenant), printable(strings.Join(v.EventTypes, ",")), v.Enabled, printable(secrets), cert)
	}
	return tw.Flush()
}

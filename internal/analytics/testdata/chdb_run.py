"""Runs SQL on the ClickHouse engine of chdb-core, for internal/analytics/chdb_test.go.

Reads one JSON object on stdin: {"path": DIR, "steps": [{"sql": S, "format": F}]}.
Every step runs in one session whose data lives in DIR (so a later run sees
the tables of an earlier one). A step with a format is a query and its output
(JSONCompact, say) is returned parsed; a step without one is a statement.
Prints a JSON array, one element per step (null for statements). A failing
step exits 1 with the step's number, its first line and the engine's error.
"""
import json
import sys

import chdb
from chdb import session

SETTINGS = {
    "session_timezone": "UTC",
    # 64-bit integers as JSON numbers, NaN as "nan": what the Go side renders.
    "output_format_json_quote_64bit_integers": "0",
    "output_format_json_quote_denormals": "1",
}


def main():
    req = json.load(sys.stdin)
    sess = session.Session(req["path"])
    out = []
    try:
        for k, v in SETTINGS.items():
            sess.query(f"SET {k} = '{v}'")
        for i, step in enumerate(req.get("steps") or []):
            sql, fmt = step["sql"], step.get("format")
            try:
                if fmt:
                    res = sess.query(sql, fmt)
                    text = res.bytes().decode() if hasattr(res, "bytes") else str(res)
                    out.append(json.loads(text) if fmt.startswith("JSON") else text)
                else:
                    sess.query(sql)
                    out.append(None)
            except Exception as e:  # the engine's own message says what failed
                first = sql.strip().splitlines()[0] if sql.strip() else ""
                print(f"step {i} ({first}): {e}", file=sys.stderr)
                sys.exit(1)
    finally:
        sess.close()
    json.dump({"version": chdb.query("SELECT version()", "CSV").bytes().decode().strip().strip('"'), "results": out}, sys.stdout)


if __name__ == "__main__":
    main()

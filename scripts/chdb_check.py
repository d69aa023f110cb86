#!/usr/bin/env python3
"""Run SQL statements on a current ClickHouse (chDB, in-process) and report each.

Input (stdin): JSON lines {"name": ..., "file": ..., "sql": ...}; only "sql" is
required, other fields are copied to the output. The statements run in order in
one fresh chDB session whose data lives in a temporary directory (removed at the
end), so USE and CREATE carry over from one statement to the next.

Output (stdout): one JSON line per statement, the input fields without "sql"
plus "ok": true, or "ok": false and "error": ClickHouse's error text.
Exit status 1 when any statement failed, 2 on bad input.

    --database NAME   create NAME and USE it before the first statement
    --split FILE...   instead: print FILE's statements as JSON lines, split the
                      way internal/chstorage/migrate.go splits migrations (on ';'
                      ending a line; blank and '--' comment lines dropped)

Example (every migration, applied twice, as keyfleet's Migrate would):

    py=$(scripts/chdb.sh)
    { $py scripts/chdb_check.py --split internal/chstorage/migrations/*.sql
      $py scripts/chdb_check.py --split internal/chstorage/migrations/*.sql; } |
      $py scripts/chdb_check.py --database keyfleet
"""

import argparse
import json
import os
import shutil
import sys
import tempfile


def split_statements(body):
    """Mirror chstorage.splitStatements."""
    stmts, cur = [], []
    for line in body.split("\n"):
        trimmed = line.strip()
        if trimmed == "" or trimmed.startswith("--"):
            continue
        cur.append(line + "\n")
        if trimmed.endswith(";"):
            stmts.append("".join(cur).strip()[:-1])
            cur = []
    rest = "".join(cur).strip()
    if rest:
        stmts.append(rest)
    return stmts


def split_files(paths):
    for path in paths:
        with open(path, encoding="utf-8") as f:
            stmts = split_statements(f.read())
        for i, sql in enumerate(stmts, 1):
            rec = {"name": "%s#%d" % (os.path.basename(path), i), "file": path, "sql": sql}
            print(json.dumps(rec), flush=True)


def run(database):
    from chdb import session  # imported here: --split needs no chDB

    failed = False
    tmp = tempfile.mkdtemp(prefix="chdb-check-")
    sess = session.Session(tmp)
    try:
        if database:
            sess.query("CREATE DATABASE IF NOT EXISTS `%s`" % database.replace("`", ""))
            sess.query("USE `%s`" % database.replace("`", ""))
        for lineno, line in enumerate(sys.stdin, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                sql = rec.pop("sql")
            except (ValueError, KeyError, AttributeError) as e:
                print("chdb_check: line %d: want a JSON object with \"sql\": %s" % (lineno, e), file=sys.stderr)
                return 2
            try:
                sess.query(sql, "Null")
                rec["ok"] = True
            except Exception as e:  # chdb raises ChdbError (a RuntimeError) with ClickHouse's text
                rec["ok"] = False
                rec["error"] = str(e).strip()
                failed = True
            print(json.dumps(rec), flush=True)
    finally:
        sess.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database")
    p.add_argument("--split", nargs="+", metavar="FILE")
    args = p.parse_args()
    if args.split:
        split_files(args.split)
        return 0
    return run(args.database)


if __name__ == "__main__":
    sys.exit(main())

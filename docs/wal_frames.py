#!/usr/bin/env python3
"""How many WAL frames one group commit of a given shape writes in SQLite.

Used for BENCHMARKS.md ("Sixth session: what bounds mixed mode"). It needs
a copy of a database under the mixed ingest load, taken while the bench
runs (SQLite's backup API reads a WAL database consistently):

    LIM_BENCH_TARGETS=lim-sqlite LIM_BENCH_MODES=mixed cargo bench --bench ingest_load &
    sleep 20   # the build, the 5,000 fingerprints, some seconds of load
    DB=$(ls -l /proc/$(pgrep -x lim)/fd | grep -o '/[^ ]*\\.db$' | head -1)
    python3 -c "import sqlite3; s = sqlite3.connect('file:$DB?mode=ro', uri=True); \\
        d = sqlite3.connect('/tmp/snap.db'); s.backup(d); d.close()"
    python3 docs/wal_frames.py /tmp/snap.db

Each commit is written with plain statements shaped like lim's own
(`src/store/sqlite_batch.rs`): new incidents (the row, its label rows,
an event, an alert, a pending delivery), resolves of the newest open ones
(status, `updated_at`, `resolved_at`, the label rows' `updated_at`, an
event, an alert), delivery attempts (a delivery row updated) and repeat
counters (`last_seen`, `seen_count` of random open incidents). The WAL is
checkpointed and truncated before each commit, so its size afterwards is
that commit's frames. It measures pages written, not lim's CPU.
"""

import json
import os
import random
import shutil
import sqlite3
import sys

WORK = "/tmp/wal_frames.db"


def fresh(snapshot, page_size):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(WORK + suffix):
            os.remove(WORK + suffix)
    shutil.copy(snapshot, WORK)
    c = sqlite3.connect(WORK, isolation_level=None)
    if c.execute("pragma page_size").fetchone()[0] != page_size:
        c.execute("pragma journal_mode=delete")
        c.execute(f"pragma page_size={page_size}")
        c.execute("vacuum")
    c.execute("pragma journal_mode=wal")
    c.execute("pragma synchronous=normal")
    c.execute("pragma wal_autocheckpoint=0")
    return c


def commits(c, new=8, resolves=8, attempts=8, touches=23, label_updated=True, n=60):
    random.seed(1)
    cols = [r[1] for r in c.execute("pragma table_info(incidents)")]
    template = list(c.execute("select * from incidents where status != 'resolved' limit 1").fetchone())
    opened = [r[0] for r in c.execute("select id from incidents where status != 'resolved' order by id limit 5000")]
    newest = [r[0] for r in c.execute("select id from incidents where status != 'resolved' order by id desc limit 400")]
    next_id = c.execute("select max(id) from incidents").fetchone()[0] + 1
    now = c.execute("select max(updated_at) from incidents").fetchone()[0] + 1
    page = c.execute("pragma page_size").fetchone()[0]
    insert = f"insert into incidents ({','.join(cols)}) values ({','.join('?' * len(cols))})"
    frames = 0
    for _ in range(n):
        c.execute("pragma wal_checkpoint(truncate)")
        c.execute("begin immediate")
        for _ in range(new):
            now += 1
            labels = {"alertname": "HighLatency", "model": "gpt-4o", "n": f"new-{next_id}",
                      "service": "chat", "severity": "critical"}
            row = list(template)
            for col, value in (("id", next_id), ("fingerprint", f"fp-{next_id}"), ("labels", json.dumps(labels)),
                               ("created_at", now), ("updated_at", now), ("last_seen", now)):
                row[cols.index(col)] = value
            c.execute(insert, row)
            for key, value in labels.items():
                c.execute("insert into incident_labels (key, value, created_at, incident_id, updated_at) "
                          "values (?, ?, ?, ?, ?)", (key, value, now, next_id, now))
            c.execute("insert into incident_events (incident_id, seq, at, kind, body) values (?, 1, ?, 'opened', '{}')",
                      (next_id, now))
            c.execute("insert into alerts (incident_id, fingerprint, status, source, labels, annotations, starts_at, "
                      "ends_at, received_at) values (?, ?, 'firing', 'prometheus', ?, '{}', ?, ?, ?)",
                      (next_id, f"fp-{next_id}", json.dumps(labels), now, now, now))
            c.execute("insert into notifications (key, incident_id, event, recipient, transport, status, attempts, "
                      "created_at, updated_at) values (?, ?, 'e', 'console', 'console', 'pending', 0, ?, ?)",
                      (f"key-{next_id}", next_id, now, now))
            newest.append(next_id)
            next_id += 1
        for _ in range(resolves):
            rid = newest.pop(0)
            labels, created = c.execute("select labels, created_at from incidents where id = ?", (rid,)).fetchone()
            c.execute("update incidents set status = 'resolved', updated_at = ?, resolved_at = ?, "
                      "version = version + 1 where id = ?", (now, now, rid))
            if label_updated:
                for key, value in json.loads(labels).items():
                    c.execute("update incident_labels set updated_at = ? where key = ? and value = ? "
                              "and created_at = ? and incident_id = ?", (now, key, value, created, rid))
            c.execute("insert into incident_events (incident_id, seq, at, kind, body) "
                      "values (?, (select max(seq) + 1 from incident_events where incident_id = ?), ?, 'resolved', '{}')",
                      (rid, rid, now))
            c.execute("insert into alerts (incident_id, fingerprint, status, source, labels, annotations, starts_at, "
                      "ends_at, received_at) values (?, 'x', 'resolved', 'prometheus', '{}', '{}', ?, ?, ?)",
                      (rid, now, now, now))
        for k in range(attempts):
            c.execute("update notifications set status = 'delivered', attempts = 1, updated_at = ? "
                      "where id = (select max(id) from notifications) - ?", (now, k + new))
        for t in random.sample(opened, touches):
            c.execute("update incidents set last_seen = ?, seen_count = seen_count + 1 where id = ?", (now, t))
        c.execute("commit")
        frames += os.path.getsize(WORK + "-wal") // (page + 24)
    return frames / n, page


def main():
    snapshot = sys.argv[1] if len(sys.argv) > 1 else "/tmp/snap.db"
    shapes = [
        ("8 new, 8 resolves, 8 attempts, 23 repeat counters", 4096, {}),
        ("the same without the repeat counters", 4096, {"touches": 0}),
        ("the same without the label rows' updated_at", 4096, {"label_updated": False}),
        ("8 new and their attempts only", 4096, {"resolves": 0, "touches": 0}),
        ("23 repeat counters only", 4096, {"new": 0, "resolves": 0, "attempts": 0}),
        ("the first, 2 KiB pages", 2048, {}),
        ("the first, 1 KiB pages", 1024, {}),
    ]
    print("| commit of | WAL frames | KiB |\n|---|---|---|")
    for what, page_size, shape in shapes:
        c = fresh(snapshot, page_size)
        frames, page = commits(c, **shape)
        c.close()
        print(f"| {what} | {frames:.1f} | {frames * page / 1024:.0f} |")


if __name__ == "__main__":
    main()

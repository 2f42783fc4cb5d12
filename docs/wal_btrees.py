#!/usr/bin/env python3
"""Which B-trees a running lim's group commits write, counted in its WAL.

Used for BENCHMARKS.md ("Eleventh session: where a state change's time
goes"). Unlike docs/wal_frames.py, which replays commits of a chosen shape,
this reads the frames lim itself wrote. It needs lim's database at a known
path during a mixed row, and a copy of that database and its WAL taken
mid-row (the bench kills lim with the database open, so the WAL is there):

    printf '#!/bin/bash\\nrm -f /tmp/keep.db*\\nexport LIM_DATABASE_URL=sqlite:///tmp/keep.db\\nexec %s "$@"\\n' \\
        "$PWD/target/release/lim" > /tmp/lim-keep && chmod +x /tmp/lim-keep
    LIM_BENCH_LIM=/tmp/lim-keep LIM_BENCH_TARGETS=lim-sqlite LIM_BENCH_MODES=mixed \\
        LIM_BENCH_SECONDS=30 cargo bench --bench ingest_load &
    sleep 30; cp /tmp/keep.db /tmp/snap.db; cp /tmp/keep.db-wal /tmp/snap.db-wal
    python3 docs/wal_btrees.py /tmp/snap.db

Frames are read from the WAL's start while they carry the salt of its
header (the frames of the current pass; older ones after them are stale),
grouped into commits by the commit-size field of their header, and each
frame's page is named by the B-tree it belongs to in the database with
that WAL applied (`dbstat`, read on a copy so the original stays as it
was). Needs a Python whose sqlite3 has `dbstat` (Debian's has).
"""

import collections
import shutil
import sqlite3
import struct
import sys
import tempfile


def page_owners(db, wal):
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(db, f"{tmp}/a.db")
        shutil.copy(wal, f"{tmp}/a.db-wal")
        conn = sqlite3.connect(f"{tmp}/a.db")
        owners = dict(conn.execute("SELECT pageno, name FROM dbstat"))
        conn.close()
    return owners


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: wal_btrees.py <database>   (its WAL beside it, <database>-wal)")
    db = sys.argv[1]
    wal = db + "-wal"
    owners = page_owners(db, wal)
    data = open(wal, "rb").read()
    _magic, _version, page_size, _seq, salt1, salt2, _c1, _c2 = struct.unpack(">8I", data[:32])
    frame = 24 + page_size
    frames = commits = 0
    written = collections.Counter()
    pending = collections.Counter()
    for off in range(32, len(data) - frame + 1, frame):
        page, commit_size, s1, s2 = struct.unpack(">4I", data[off:off + 16])
        if (s1, s2) != (salt1, salt2):
            break
        frames += 1
        pending[owners.get(page, "(freed or new)")] += 1
        if commit_size:
            commits += 1
            written.update(pending)
            pending.clear()
    if not commits:
        sys.exit("no commit in the WAL's current pass")
    print(f"page size {page_size}, {frames} frames, {commits} commits, "
          f"{frames / commits:.1f} frames a commit")
    for name, n in written.most_common():
        print(f"{name:40s} {n:7d} {n / commits:7.2f}")


if __name__ == "__main__":
    main()

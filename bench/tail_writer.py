#!/usr/bin/env python3
"""Appends JSON log lines (~250 B) to a file at a steady rate, in batches: every `tick` seconds
one write(2) of rate × tick lines. Each line starts with `{"wt":<write time>,"seq":<n>,` where
the write time is time.time_ns() taken immediately before the write(2) call (it is spliced into
the already formatted batch, so formatting is not counted as latency). seq numbers run 0, 1, 2…
so a receiver can find lost and duplicated events.

Python is not the limit: formatting 2,000 lines takes about 1 ms of the 100 ms tick.

  python3 bench/tail_writer.py FILE [--rate 20000] [--tick 0.1] [--seconds 60]
"""
import argparse
import os
import random
import time

WT_MARK = b"W" * 19  # time.time_ns() has 19 digits until the year 2286


def payloads(n=1000, seed=3):
    rnd = random.Random(seed)
    paths = ["/api/v1/items", "/api/v1/orders", "/login", "/health", "/api/v2/search"]
    out = []
    for i in range(n):
        out.append(
            '"level":"%s","user":"user%d@example.com","client_ip":"10.%d.%d.%d",'
            '"method":"%s","path":"%s","status":%d,"duration_ms":%d,"msg":"request served","trace_id":"%032x"}\n'
            % (rnd.choice(["info", "info", "info", "warn", "error"]), rnd.randrange(500),
               rnd.randrange(256), rnd.randrange(256), rnd.randrange(256), rnd.choice(["GET", "POST"]),
               rnd.choice(paths), rnd.choice([200, 200, 201, 404, 500]), rnd.randrange(1000), rnd.getrandbits(128)))
    return out


def write_loop(path, rate, tick, seconds, counter=None, stop=None, start_seq=0):
    """Writes until `seconds` elapsed or `stop` (a multiprocessing Event) is set. `counter` (a
    multiprocessing Value) holds the number of lines written so far. Returns lines written."""
    tails = payloads()
    per_tick = max(1, int(round(rate * tick)))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    seq = start_seq
    t = time.monotonic()
    end = t + seconds
    try:
        while time.monotonic() < end and not (stop is not None and stop.is_set()):
            buf = "".join('{"wt":WWWWWWWWWWWWWWWWWWW,"seq":%d,%s' % (s, tails[s % len(tails)])
                          for s in range(seq, seq + per_tick)).encode()
            buf = buf.replace(WT_MARK, str(time.time_ns()).encode())
            view = memoryview(buf)
            while view:
                view = view[os.write(fd, view):]
            seq += per_tick
            if counter is not None:
                counter.value = seq
            t += tick
            delay = t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    finally:
        os.close(fd)
    return seq - start_seq


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--rate", type=int, default=20000, help="lines per second")
    ap.add_argument("--tick", type=float, default=0.1, help="seconds between writes")
    ap.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    n = write_loop(a.file, a.rate, a.tick, a.seconds)
    print(f"{n} lines written")

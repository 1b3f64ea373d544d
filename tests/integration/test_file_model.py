"""Model-based test of the `file` source against the real binary: random sequences of write /
rename rotation / copytruncate / logrotate-style numbered shifts out of the glob (os.replace: the
oldest is unlinked and its inode reused at once) / `cp` over an existing copy (rewritten in place)
/ bursts in which the writer is several equal-size generations ahead of the reader (rotations
faster than the scan interval) / truncate / delete / create / restart / kill -9, checked against a
simple model of what must arrive: every line written arrives exactly once (a kill -9 allows the
documented duplicate bound, README "Delivery guarantees").

The model only truncates or deletes a file once every line it holds was observed at the output
(otherwise losing them would be legitimate); everything else happens at any time, also while
logship is stopped. Seeds: LOGSHIP_MODEL_SEEDS="1,2,3" (default: nine fixed seeds; LOGSHIP_MODEL_RANDOM=N adds N
random ones); LOGSHIP_MODEL_OPS sets the operations per seed (110) for a longer run.
"""
import os
import random
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from filetail import Harness, SOURCE_ID, describe_gaps, kill_dup_bound, line, parse  # noqa: E402
from lib import wait_for  # noqa: E402

HEADER = "".join(f"# shared header {i:02d} ...................................................\n"
                 for i in range(16))  # > 1 KiB, identical in the files that start with it
OPS = int(os.environ.get("LOGSHIP_MODEL_OPS", "110"))
OUT = ".out."  # names with it are excluded from the glob: rotated out of it


class Model:
    def __init__(self, tc, h, seed):
        self.tc, self.h, self.rnd = tc, h, random.Random(seed)
        self.seed = seed
        self.files = {}  # name -> list of keys it holds (physical content)
        self.expected = set()
        self.next_seq = 0
        self.next_name = 0
        self.running = False
        self.kills = 0
        self.dup_budget = 0
        self.ops = []

    # --- helpers -------------------------------------------------------------------------------
    def p(self, name):
        return self.h.path(name)

    def observed(self):
        return set(self.h.counts().keys())

    def sync(self, name):
        """Waits until every line `name` holds was observed (logship running)."""
        need = set(self.files[name])
        try:
            wait_for(lambda: need.issubset(self.observed()), 30, f"lines of {name}", interval=0.05)
        except AssertionError:
            self.fail(f"lines of {name} not delivered: {describe_gaps(need, self.h.counts())}")

    def fail(self, msg):
        dump = os.path.join(tempfile.gettempdir(), f"logship-model{self.seed}-failure.txt")
        with open(dump, "w") as f:
            f.write(f"{msg}\nops: {self.ops}\n--- log ---\n{self.h.all_logs()}")
        print(f"full ops and log: {dump}")
        self.tc.fail(f"seed {self.seed}: {msg}\nlast ops: {self.ops[-25:]}\n--- log ---\n{self.h.all_logs()[-3000:]}")

    # --- operations ------------------------------------------------------------------------------
    def create(self):
        name = f"n{self.next_name}.log"
        self.next_name += 1
        with open(self.p(name), "w") as f:
            if self.rnd.random() < 0.3:
                f.write(HEADER)
        self.files[name] = []
        return name

    def in_glob(self):
        return sorted(n for n in self.files if OUT not in n)

    def write(self, name=None, k=None, payload=None):
        if not self.in_glob():
            self.create()
        name = name or self.rnd.choice(self.in_glob())
        k = k or self.rnd.choice([1, 3, 10, 50, 200, 1000])
        keys, text = [], []
        first = self.next_seq
        for _ in range(k):
            key = ("m", self.next_seq)
            self.next_seq += 1
            text.append(line("m", key[1], payload if payload is not None else "p" * self.rnd.randrange(0, 120)) + "\n")
            keys.append(key)
        with open(self.p(name), "a") as f:
            f.write("".join(text))
        self.files[name] += keys
        self.expected.update(keys)
        return f"write {name} {k} @{first}"

    def active(self):
        return sorted(n for n in self.files if n.endswith(".log"))

    def rename_rotate(self):
        act = self.active()
        if not act:
            return self.write()
        name = self.rnd.choice(act)
        new = f"{name}.r{self.next_name}"
        self.next_name += 1
        os.rename(self.p(name), self.p(new))
        self.files[new] = self.files.pop(name)
        with open(self.p(name), "w"):
            pass
        self.files[name] = []
        return f"rename {name} -> {new}"

    def copytruncate(self):
        act = self.active()
        if not act:
            return self.write()
        name = self.rnd.choice(act)
        new = f"{name}.c{self.next_name}"
        self.next_name += 1
        shutil.copyfile(self.p(name), self.p(new))
        os.truncate(self.p(name), 0)
        self.files[new] = self.files[name]
        self.files[name] = []
        return f"copytruncate {name} -> {new}"

    def shift(self, name=None):
        """logrotate `rotate 3` out of the glob: name.out.2 -> .3 and .1 -> .2 with os.replace (the
        oldest is unlinked, its inode free for reuse at once), name -> name.out.1, a new name."""
        act = self.active()
        if not self.running or not act:
            return self.write()
        name = name or self.rnd.choice(act)
        for i in (2, 1):
            src, dst = f"{name}{OUT}{i}", f"{name}{OUT}{i + 1}"
            if src in self.files:
                # What dst held is unlinked: like every deletion in the model, only once its
                # lines were read (the shifts themselves go on faster than the scan interval).
                if self.files.get(dst):
                    self.sync(dst)
                os.replace(self.p(src), self.p(dst))
                self.files.pop(dst, None)
                self.files[dst] = self.files.pop(src)
        dst = f"{name}{OUT}1"
        if self.files.get(dst):
            self.sync(dst)
        os.replace(self.p(name), self.p(dst))
        self.files.pop(dst, None)
        self.files[dst] = self.files.pop(name)
        with open(self.p(name), "w"):
            pass
        self.files[name] = []
        return f"shift {name}"

    def cp_over(self):
        """`cp name name.cp && : > name`: the copy, if it exists, is rewritten in place."""
        act = self.active()
        if not act:
            return self.write()
        name = self.rnd.choice(act)
        copy = f"{name}.cp"
        if copy in self.files:
            if not self.deliverable(copy):
                return self.write(name)
            if self.running:
                self.sync(copy)  # its old content is destroyed: it must have been read
        shutil.copyfile(self.p(name), self.p(copy))
        os.truncate(self.p(name), 0)
        self.files[copy] = self.files[name]
        self.files[name] = []
        return f"cp over {name} -> {copy}"

    def burst(self):
        """The writer several generations ahead of the reader: equal-size generations written
        and shifted out back to back, faster than the scan interval."""
        act = self.active()
        if not self.running or not act:
            return self.write()
        name = self.rnd.choice(act)
        n = self.rnd.randrange(2, 6)
        for _ in range(n):
            self.write(name, k=500, payload="e" * 50)
            self.shift(name)
        return f"burst {name} x{n}"

    def deliverable(self, name):
        return self.running or set(self.files[name]).issubset(self.observed())

    def truncate(self):
        cands = [n for n in sorted(self.files) if self.files[n]]
        if not cands:
            return self.write()
        name = self.rnd.choice(cands)
        if not self.deliverable(name):
            return self.write(name)
        if self.running:
            self.sync(name)
        os.truncate(self.p(name), 0)
        self.files[name] = []
        return f"truncate {name}"

    def delete(self):
        if not self.files:
            return self.create()
        name = self.rnd.choice(sorted(self.files))
        if not self.deliverable(name):
            return self.write(name)
        if self.running:
            self.sync(name)
        os.unlink(self.p(name))
        del self.files[name]
        return f"delete {name}"

    def settle_rotated(self):
        """A generation rotated out of the glob that logship never saw before it stops is not
        logship's to find at the restart (nothing names it): wait until those were read."""
        for n in sorted(self.files):
            if OUT in n and self.files[n]:
                self.sync(n)

    def stop(self):
        if not self.running:
            return self.start()
        self.settle_rotated()
        rc = self.h.proc.stop()
        self.h.logs.append(self.h.proc.log())
        if rc != 0:
            self.fail(f"logship exited {rc} on SIGTERM")
        self.running = False
        return "stop"

    def kill9(self):
        if not self.running:
            return self.start()
        self.settle_rotated()
        self.h.kill9()
        self.kills += 1
        # One source batch per file that may have had one in flight, plus a checkpoint interval.
        self.dup_budget += kill_dup_bound(0, files_open=max(2, len(self.files)))
        self.running = False
        return "kill -9"

    def start(self):
        if self.running:
            return self.write()
        self.h.start()
        self.running = True
        return "start"

    def step(self):
        r = self.rnd.random()
        table = [(0.36, self.write), (0.44, self.rename_rotate), (0.50, self.copytruncate),
                 (0.56, self.shift), (0.61, self.cp_over), (0.64, self.burst),
                 (0.69, self.truncate), (0.74, self.delete), (0.80, self.create),
                 (0.92, self.stop if self.running else self.start), (0.95, self.kill9)]
        for limit, op in table:
            if r < limit:
                break
        else:
            op = self.write
        if not self.running and self.rnd.random() < 0.35:
            op = self.start
        what = op()
        self.ops.append(what if isinstance(what, str) else op.__name__)
        # Pacing only: lets logship run between operations some of the time.
        if self.rnd.random() < 0.3:
            time.sleep(self.rnd.choice([0.01, 0.05, 0.15]))

    def finish(self):
        if not self.running:
            self.start()
        try:
            wait_for(lambda: self.expected.issubset(self.observed()), 60, "every line of the model", interval=0.2)
        except AssertionError:
            self.fail(f"not every line arrived: {describe_gaps(self.expected, self.h.counts())}")
        self.h.settle()
        got = self.h.counts()
        bound = self.dup_budget
        dups = sum(n - 1 for n in got.values() if n > 1)
        extra = [k for k in got if k not in self.expected]
        if extra or dups > bound:
            dup_keys = {k for k, n in got.items() if n > 1}
            where = [(e.get("source"), e.get("event", "")[:24]) for e in self.h.events()
                     if isinstance(e.get("event"), str) and parse([e]).keys() & dup_keys][:12]
            self.fail(f"duplicates {dups} (bound {bound} for {self.kills} kill -9): "
                      f"{describe_gaps(self.expected, got)}\nduplicated events' sources: {where}")
        return dups


class ModelBased(unittest.TestCase):
    def test_random_operation_sequences_against_the_model(self):
        """Verifies random write/rotate/copytruncate/truncate/delete/restart/kill -9 sequences
        deliver every line exactly once (kill -9: within the bound), for several seeds."""
        env = os.environ.get("LOGSHIP_MODEL_SEEDS")
        # 212426: a copy held undecided across a restart (retired generations are now persisted).
        # 573629: a copy rewritten in place, placed by a retired generation, then a stop before any
        # of its new positions was acknowledged (the retired generation must outlive the stop).
        # CI runs fixed seeds (a red run must be reproducible); LOGSHIP_MODEL_RANDOM=N adds N random
        # ones for exploration.
        extra = int(os.environ.get("LOGSHIP_MODEL_RANDOM", "0"))
        seeds = ([int(s) for s in env.split(",")] if env else
                 [1, 2, 3, 212426, 573629, 296660, 529321, 776177, 712481, 719704] +
                 [random.randrange(1_000_000) for _ in range(extra)])
        for seed in seeds:
            with self.subTest(seed=seed):
                print(f"model seed {seed}")
                h = Harness(self, name=f"model{seed}", include=None)
                h.cfg["sources"][SOURCE_ID]["include"] = [h.logdir + "/*"]
                h.cfg["sources"][SOURCE_ID]["exclude"] = [h.logdir + "/*" + OUT + "*"]
                h.rewrite_config()
                m = Model(self, h, seed)
                m.start()
                for _ in range(OPS):
                    m.step()
                dups = m.finish()
                print(f"seed {seed}: {len(m.expected)} lines, {len(m.ops)} ops, {m.kills} kill -9, "
                      f"{dups} duplicates")
                if m.running:
                    h.stop()


if __name__ == "__main__":
    unittest.main()

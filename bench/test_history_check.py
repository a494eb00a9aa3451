"""The history checker can fail: for each invariant, a small hand-made history that breaks it
and a clean one. Runs the checker as the program it is.

    python3 -m unittest bench/test_history_check.py
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "history_check.py")


def result(channel, job, event, t, worker="w1", **extra):
    """A recorded terminal result as bench/history_record.py writes it."""
    return dict({"channel": channel, "t": t, "routing_key": "%s.%s" % (job, event), "message_id": job,
                 "correlation_id": None,
                 "body": {"version": 1, "id": job, "event": event, "status": event, "worker": worker}}, **extra)


class CheckerTest(unittest.TestCase):
    def check(self, standin, messages, submitted=None, cancels=None, *flags):
        """Runs the checker on the given history; returns (exit code, output)."""
        with tempfile.TemporaryDirectory() as d:
            def write(name, lines):
                path = os.path.join(d, name)
                with open(path, "w") as f:
                    f.writelines(lines)
                return path
            argv = [sys.executable, CHECKER,
                    "--standin", write("standin", ["%s %s %d %.6f\n" % line for line in standin]),
                    "--messages", write("messages", [json.dumps(m) + "\n" for m in messages])]
            if submitted is not None:
                argv += ["--submitted", write("submitted", [json.dumps(s) + "\n" for s in submitted])]
            if cancels is not None:
                argv += ["--cancels", write("cancels", [json.dumps(c) + "\n" for c in cancels])]
            p = subprocess.run(argv + list(flags), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.assertIn("history: ", p.stdout)
        return p.returncode, p.stdout

    def assertViolates(self, invariant, job, *history, **kw):
        code, out = self.check(*history, **kw)
        self.assertEqual(code, 1, out)
        self.assertTrue(any(line.startswith(invariant + ": job " + job) for line in out.splitlines()), out)
        self.assertIn(" %s=1" % invariant, out)

    def assertClean(self, *history):
        code, out = self.check(*history)
        self.assertEqual(code, 0, out)
        self.assertTrue(out.rstrip().endswith("overlap=0 duplicate=0 missing=0 leftover=0 cancel=0 phantom=0"), out)

    # overlap
    def test_two_runs_of_one_job_at_once_overlap(self):
        self.assertViolates("overlap", "A", [("start", "A", 1, 10), ("start", "A", 2, 12), ("end", "A", 1, 15),
                                             ("end", "A", 2, 20)], [result("results", "A", "completed", 21)])

    def test_a_run_that_never_ended_overlaps_a_later_one(self):
        self.assertViolates("overlap", "A", [("start", "A", 1, 10), ("start", "A", 2, 30), ("end", "A", 2, 40)],
                            [result("results", "A", "completed", 41)])

    def test_runs_one_after_the_other_in_one_warm_pid_are_clean(self):
        # the same id twice in one warm runner, and a rerun starting the moment the first ended
        self.assertClean([("start", "A", 7, 10), ("end", "A", 7, 15), ("start", "A", 7, 16), ("end", "A", 7, 18),
                          ("start", "A", 8, 18), ("end", "A", 8, 19)], [result("results", "A", "completed", 20)])

    # duplicate
    def test_two_results_on_the_results_queue(self):
        self.assertViolates("duplicate", "A", [("start", "A", 1, 10), ("end", "A", 1, 15)],
                            [result("results", "A", "completed", 16), result("results", "A", "failed", 17)])

    def test_two_terminal_events(self):
        self.assertViolates("duplicate", "A", [("start", "A", 1, 10), ("end", "A", 1, 15)],
                            [result("results", "A", "completed", 16), result("events", "A", "completed", 16),
                             result("events", "A", "completed", 17, worker="w2")])

    def test_two_replies_to_one_correlation_id(self):
        self.assertViolates("duplicate", "A", [("start", "A", 1, 10), ("end", "A", 1, 15)],
                            [result("results", "A", "completed", 16),
                             result("reply:q", "A", "completed", 16, correlation_id="c1"),
                             result("reply:q", "A", "completed", 17, worker="w2", correlation_id="c1")])

    def test_two_results_with_different_bodies_of_one_event(self):
        self.assertViolates("duplicate", "A", [("start", "A", 1, 10), ("end", "A", 1, 15)],
                            [result("results", "A", "completed", 16), result("results", "A", "completed", 17, worker="w2")])

    def test_one_result_published_again_is_counted_not_a_violation(self):
        code, out = self.check([("start", "A", 1, 10), ("end", "A", 1, 15)],
                               [result("results", "A", "completed", 16), result("results", "A", "completed", 40),
                                result("events", "A", "completed", 16)])
        self.assertEqual(code, 0, out)
        self.assertIn("(1 republished copies)", out)

    def test_one_result_per_channel_and_per_correlation_id_is_clean(self):
        started = dict(result("events", "A", "started", 11), routing_key="A.started")
        self.assertClean([("start", "A", 1, 10), ("end", "A", 1, 15)],
                         [started, result("results", "A", "completed", 16), result("events", "A", "completed", 16),
                          result("reply:q", "A", "completed", 16, correlation_id="c1"),
                          result("reply:q", "A", "completed", 30, correlation_id="c2")])

    # missing
    def test_a_submitted_job_without_a_result(self):
        self.assertViolates("missing", "B", [("start", "A", 1, 10), ("end", "A", 1, 15)],
                            [result("results", "A", "completed", 16)], [{"id": "A", "t": 9}, {"id": "B", "t": 9}])

    def test_a_result_on_events_only_is_still_missing(self):
        self.assertViolates("missing", "A", [("start", "A", 1, 10), ("end", "A", 1, 15)],
                            [result("events", "A", "completed", 16)], [{"id": "A", "t": 9}])

    def test_no_reply_on_a_listened_reply_queue(self):
        meta = {"channel": "meta", "t": 1, "reply_queues": ["q"]}
        self.assertViolates("missing", "A", [("start", "A", 1, 10), ("end", "A", 1, 15)],
                            [meta, result("results", "A", "completed", 16)], [{"id": "A", "t": 9, "reply_to": "q"}])

    def test_every_submitted_job_with_a_result_is_clean(self):
        meta = {"channel": "meta", "t": 1, "reply_queues": ["q"]}
        self.assertClean([("start", "A", 1, 10), ("end", "A", 1, 15)],
                         [meta, result("results", "A", "completed", 16), result("results", "B", "failed", 9.5),
                          result("reply:q", "A", "completed", 16, correlation_id="c1")],
                         [{"id": "A", "t": 9, "reply_to": "q", "correlation_id": "c1"}, {"id": "B", "t": 9}])

    # leftover
    def test_a_start_without_an_end_is_a_leftover_when_idle_is_expected(self):
        standin = [("start", "A", 1, 10), ("end", "A", 1, 15), ("start", "B", 2, 11)]
        messages = [result("results", "A", "completed", 16)]
        code, out = self.check(standin, messages)
        self.assertEqual(code, 0, out)  # without --expect-idle, B may still be running
        self.assertViolates("leftover", "B", standin, messages, None, None, "--expect-idle")

    def test_every_start_ended_is_clean_when_idle_is_expected(self):
        code, out = self.check([("start", "A", 1, 10), ("end", "A", 1, 15)], [result("results", "A", "completed", 16)],
                               None, None, "--expect-idle")
        self.assertEqual(code, 0, out)

    # cancel
    def test_a_cancelled_run_that_ends_too_late(self):
        self.assertViolates("cancel", "A", [("start", "A", 1, 10), ("end", "A", 1, 32.5)],
                            [result("results", "A", "cancelled", 33)], None, [{"id": "A", "t": 20}])

    def test_a_cancelled_run_that_never_ends(self):
        self.assertViolates("cancel", "A", [("start", "A", 1, 10)], [], None, [{"id": "A", "t": 20}])

    def test_a_cancelled_run_that_completes_anyway(self):
        self.assertViolates("cancel", "A", [("start", "A", 1, 10), ("end", "A", 1, 21)],
                            [result("results", "A", "completed", 21.5)], None, [{"id": "A", "t": 20}])

    def test_a_queued_job_that_runs_to_completion_after_its_cancel(self):
        code, out = self.check([("start", "A", 1, 30), ("end", "A", 1, 45)], [result("results", "A", "completed", 46)],
                               [{"id": "A", "t": 5}], [{"id": "A", "t": 20}])
        self.assertEqual(code, 1, out)
        self.assertIn("cancel=2", out)  # too late, and the wrong result
        self.assertIn("ended 25.000 s after the cancel", out)

    def test_cancels_obeyed_or_too_late_to_matter_are_clean(self):
        self.assertClean([("start", "A", 1, 10), ("end", "A", 1, 22.5),   # stopped 2.5 s after its cancel
                          ("start", "B", 2, 10), ("end", "B", 2, 15),     # finished before its cancel
                          ("start", "C", 3, 10), ("end", "C", 3, 20.1)],  # finished as the cancel came
                         [result("results", "A", "cancelled", 23), result("results", "B", "completed", 15.5),
                          result("results", "C", "completed", 20.2)],
                         [{"id": "A", "t": 1}, {"id": "B", "t": 1}, {"id": "C", "t": 1}],
                         [{"id": "A", "t": 20}, {"id": "B", "t": 20}, {"id": "C", "t": 20}, {"id": "Z", "t": 20}])

    # phantom
    def test_completed_before_any_run_ended(self):
        self.assertViolates("phantom", "A", [("start", "A", 1, 10), ("end", "A", 1, 15)],
                            [result("results", "A", "completed", 12)])

    def test_completed_without_any_run(self):
        self.assertViolates("phantom", "A", [], [result("results", "A", "completed", 12)])

    def test_completed_after_its_run_and_failed_without_a_run_are_clean(self):
        self.assertClean([("start", "A", 1, 10), ("end", "A", 1, 15)],
                         [result("results", "A", "completed", 15.1), result("results", "B", "failed", 3)])


if __name__ == "__main__":
    unittest.main()

"""Stand-in for Wan2.2's `wan` package: the five pipeline classes generate.py builds. Building
one takes GENWORKER_STANDIN_BUILD_S seconds (loading the weights), and each records its
construction in GENWORKER_STANDIN_BUILDS (a file) when set, so tests can count builds."""
import os
import time


class _Pipeline:
    def __init__(self, config=None, checkpoint_dir=None, device_id=0, rank=0, **flags):
        time.sleep(float(os.environ.get("GENWORKER_STANDIN_BUILD_S", "0")))
        self.config, self.checkpoint_dir, self.flags = config, checkpoint_dir, flags
        path = os.environ.get("GENWORKER_STANDIN_BUILDS")
        if path:
            with open(path, "a") as f:
                f.write("%s %s %d\n" % (type(self).__name__, config, os.getpid()))


class WanT2V(_Pipeline):
    pass


class WanI2V(_Pipeline):
    pass


class WanTI2V(_Pipeline):
    pass


class WanS2V(_Pipeline):
    pass


class WanAnimate(_Pipeline):
    pass

"""The flag Ctrl-C and SIGTERM set for `leadflow dev`'s main loop. It was a threading.Event,
set from the signal handler; a signal that landed while the main thread held the Event's own
lock deadlocked the handler (seen with py-spy: both handlers stuck in Condition.__enter__
under Event.wait), and the stack ignored every signal after. The flag takes signals at any
moment of its waits."""

import os
import random
import signal
import threading

from shared.supervisor import StopFlag


def test_the_flag_is_set_once_and_stays_set() -> None:
    flag = StopFlag()
    assert not flag.is_set() and not flag.wait(0.001)
    flag.set()
    flag.set()
    assert flag.wait(0) and flag.is_set() and flag.wait(10), "set stays set, without waiting"


def test_signals_landing_anywhere_in_the_waits_always_stop_the_loop() -> None:
    for _ in range(500):
        flag = StopFlag()
        previous = signal.signal(signal.SIGUSR1, lambda *_, flag=flag: flag.set())
        sender = threading.Timer(random.uniform(0, 0.001), os.kill, (os.getpid(), signal.SIGUSR1))
        try:
            sender.start()
            while not flag.wait(0.0001):  # the supervisor's loop, much tighter
                pass
        finally:
            sender.join()
            signal.signal(signal.SIGUSR1, previous)

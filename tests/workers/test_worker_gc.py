"""Model workers take their long-lived objects out of the garbage collector's scans, so that a
full collection (a tenth of a second with Django, torch and the model loaded) never falls in
the middle of a click."""

from __future__ import annotations

import gc

from celery.signals import worker_process_init

import workers.tasks.interactive  # noqa: F401  (connects the signal)


def test_a_pool_process_freezes_the_objects_it_starts_with() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        # when: Celery starts a pool process (it sends this signal in the new process)
        worker_process_init.send(sender=None)
        # then: what the process holds is frozen; later garbage is still collected
        assert gc.get_freeze_count() > 10_000
        garbage: list[object] = []
        garbage.append(garbage)  # a reference cycle made after the freeze
        del garbage
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()

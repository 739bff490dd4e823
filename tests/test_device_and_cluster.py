"""Device names and Dask scheduler addresses: what is taken, and one line for what is not."""

import pytest

from napari_nucleiseg.dask_client import dask_client
from napari_nucleiseg.device import resolve_device
from napari_nucleiseg.errors import OptionError, SchedulerLostError


@pytest.mark.parametrize("name", [" CPU ", "cpu", "auto", None])
def test_device_names_taken(name):
    assert resolve_device(name).type in ("cpu", "cuda", "mps")


@pytest.mark.parametrize("name", ["meta", "xpu", "gpu", "cpu0"])
def test_device_names_refused(name):
    with pytest.raises(OptionError, match="use auto, cpu, cuda"):
        resolve_device(name)


@pytest.mark.parametrize("address, why", [("tcp://localhost:notaport", "int"), ("foo://bar:1", "protocol 'foo'"),
                                          ("  ", "empty")])
def test_malformed_scheduler_addresses_are_one_line(address, why):
    with pytest.raises(SchedulerLostError, match=why), dask_client(None, address, timeout=1):
        pass


def test_a_block_task_cancelled_by_a_lost_scheduler_is_one_error():
    from concurrent.futures import CancelledError

    from napari_nucleiseg.outofcore.execute import _result

    class Lost:
        def result(self):
            raise CancelledError("cancelled for reason: scheduler-connection-lost")

    with pytest.raises(SchedulerLostError, match="run again to resume"):
        _result(Lost())

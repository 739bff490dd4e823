"""What a bioimage.io import reads and refuses: channel roles, URLs in any description, sizes, networks
that do not run on their own test input; licences on export; and nothing fetched on the way."""

import socket
import zipfile
from pathlib import Path

import pytest

from napari_nucleiseg.errors import PackageError

pytestmark = pytest.mark.usefixtures("bioimageio_extra")


@pytest.mark.parametrize("names, channels", [
    (["background_probability", "nucleus_probability"], [1]),  # "prob" is in both: never the background
    (["cell_boundary", "cell_interior"], [1, 0]),  # "cell" is in both: the boundary is the border
    (["foreground", "border"], [0, 1]),
    (["bg", "fg"], [1]),
])
def test_output_channel_roles(names, channels):
    from napari_nucleiseg.bioimageio.reading import _roles

    assert _roles(Path("p.zip"), names)[0] == channels


def test_a_url_in_any_description_of_the_zip_is_found(tmp_path):
    from napari_nucleiseg.bioimageio.package_import import remote_sources

    with zipfile.ZipFile(tmp_path / "p.zip", "w") as z:
        z.writestr("old/rdf.yaml", "name: decoy\n")  # first, and harmless
        z.writestr("rdf.yaml", "name: real\ndocumentation:\n  source: https://example.org/README.md\n")
    assert remote_sources(tmp_path / "p.zip") == ["https://example.org/README.md"]


def test_sizes_are_checked_before_anything_is_read(tmp_path, monkeypatch):
    from napari_nucleiseg.bioimageio import package_import

    with zipfile.ZipFile(tmp_path / "p.zip", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("test_input.npy", bytes(4096))
    monkeypatch.setattr(package_import, "MAX_MEMBER", 1024)
    with pytest.raises(PackageError, match="unpacks to"):
        package_import.load_description(tmp_path / "p.zip")


def test_an_import_runs_offline_and_a_broken_network_is_one_line(tmp_path, monkeypatch):
    from napari_nucleiseg.bioimageio.export import export_package
    from napari_nucleiseg.bioimageio.package_import import check_reproduces, import_package, load_description
    from napari_nucleiseg.bioimageio.reading import read_description

    package = export_package("unetpp8", tmp_path / "unetpp8.zip", test=False)
    tried = []

    def no_network(host, *args, **kwargs):
        tried.append(host)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    assert import_package(package, name="offline").name == "offline"
    assert tried == []  # the citations' DOIs were looked up before
    descr = load_description(package)

    def broken(x):
        raise RuntimeError("expected input to have 3 channels")

    with pytest.raises(PackageError, match="does not run on its own test input"):
        check_reproduces(broken, read_description(descr, package), descr, package)


@pytest.mark.parametrize("text, spdx", [("CC-BY-4.0", "CC-BY-4.0"), ("CC0-1.0", "CC0-1.0"), ("MIT License", "MIT"),
                                        ("BSD-3-Clause (trained on CC0 data only)", "BSD-3-Clause")])
def test_licences_of_imported_packages_export_again(text, spdx):
    from napari_nucleiseg.bioimageio.export import licence_id

    assert licence_id(text) == spdx

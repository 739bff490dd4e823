"""The napari tests' display check names the Debian package of a library Qt could not load."""

from display_check import _package_of


def test_package_names_of_missing_libraries():
    assert _package_of("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert _package_of("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert _package_of("libxcb-cursor.so.0") == "libxcb-cursor0"
    assert _package_of("libEGL.so.1") == "libegl1"

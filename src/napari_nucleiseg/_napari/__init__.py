"""Everything that imports napari or Qt lives here: readers, sample data and widgets."""

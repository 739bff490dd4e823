"""A nuclei table follows the labels the user edited: erased nuclei go, painted and new ones are measured again."""

import numpy as np
import pandas as pd

from napari_nucleiseg.inference.edited import remeasured
from napari_nucleiseg.inference.measure import measure
from napari_nucleiseg.synthetic import synthetic_nuclei


def _measured(scale=(0.5, 0.5)):
    image, labels = synthetic_nuclei((96, 96), n_nuclei=6, touching=0.0, seed=4)
    ones = np.ones(labels.shape, np.float32)
    return labels, measure(labels, image, ones, ones * 0.2, scale=scale)


def test_a_table_that_matches_its_labels_is_returned_as_it_is():
    labels, table = _measured()
    assert remeasured(labels, table, 0.25) is table


def _edited():
    """A table, its labels, and the labels edited: one nucleus erased, one merged into another, one new (99)."""
    labels, table = _measured()
    ids = sorted(table["label"])
    edited = labels.copy()
    edited[edited == ids[0]] = 0  # erased
    edited[edited == ids[2]] = ids[1]  # merged into another
    edited[:4, :4] = 99  # a new nucleus
    return labels, table, ids, edited


def test_erased_merged_painted_and_new_nuclei():
    labels, table, ids, edited = _edited()
    out = remeasured(edited, table, 0.25).set_index("label")
    assert sorted(out.index) == sorted(set(np.unique(edited)) - {0})
    assert out.loc[ids[1], "area"] == (edited == ids[1]).sum() and out.loc[ids[1], "edited"]
    assert out.loc[99, "area"] == 16 and out.loc[99, "area_physical"] == 4.0 and out.loc[99, "edited"]
    assert out.loc[99, "centroid_y"] == 1.5 and np.isnan(out.loc[99, "confidence"])
    untouched = table.set_index("label").loc[ids[3]]
    assert not out.loc[ids[3], "edited"] and out.loc[ids[3], "confidence"] == untouched["confidence"]
    again = remeasured(edited, out.reset_index(), 0.25)
    assert again.set_index("label").loc[99, "edited"]  # saved and opened again: still marked


def test_a_stack_keeps_its_planes():
    labels, table = _measured(None)
    stack = np.stack([labels, np.zeros_like(labels)])
    table = table.assign(plane=0)
    stack[1, 10:14, 10:14] = 500
    out = remeasured(stack, table).set_index("label")
    assert out.loc[500, "plane"] == 1 and out.loc[500, "area"] == 16
    assert pd.api.types.is_integer_dtype(out["plane"]) and len(out) == len(table) + 1


def test_tables_of_other_tools_are_left_as_they_are():
    labels, table = _measured()
    physical = table[["label", "area"]].assign(area=table["area"] * 0.25)  # regionprops with spacing: µm²
    assert remeasured(labels, physical, 0.25) is physical
    per_frame = pd.concat([table, table])  # labels restart in each frame
    assert remeasured(np.stack([labels, labels]), per_frame) is per_frame


def test_untouched_rows_keep_their_values_and_types():
    labels, table = _measured()
    edited = labels.copy()
    edited[edited == int(table["label"].min())] = 0
    out = remeasured(edited, table, 0.25)
    kept = table[table["label"] != table["label"].min()].reset_index(drop=True)
    for column in table.columns:
        assert out[column].dtype == table[column].dtype, column
        np.testing.assert_array_equal(out[column].to_numpy(), kept[column].to_numpy())


def test_only_the_labels_named_are_measured_again():
    labels, table, ids, edited = _edited()
    whole = remeasured(edited, table, 0.25)
    pd.testing.assert_frame_equal(remeasured(edited, table, 0.25, ids=[ids[0], ids[1], ids[2], 99, 0]), whole)
    partial = remeasured(edited, table, 0.25, ids=[99]).set_index("label")  # the others not looked at
    assert ids[0] in partial.index and partial.loc[99, "area"] == 16 and partial.loc[99, "centroid_x"] == 1.5
    assert remeasured(labels, table, 0.25, ids=ids[:2]) is table


def test_named_labels_of_a_stack():
    labels, table = _measured(None)
    stack = np.stack([labels, np.zeros_like(labels)])
    table = table.assign(plane=0)
    stack[1, 30:34, 40:46] = 500
    out = remeasured(stack, table, ids=[500]).set_index("label")
    assert out.loc[500, ["plane", "area", "centroid_y", "centroid_x"]].tolist() == [1, 24, 31.5, 42.5]
    pd.testing.assert_frame_equal(out.reset_index(), remeasured(stack, table).set_index("label").reset_index())


def test_a_reshape_that_keeps_area_and_centroid_is_seen_by_its_perimeter():
    labels = np.zeros((40, 40), np.int32)
    labels[10:20, 10:20] = 1
    table = measure(labels, labels.astype(np.float32), np.ones((40, 40), np.float32), np.zeros((40, 40), np.float32))
    edited = labels.copy()
    edited[14:16, 10] = edited[14:16, 19] = 0  # two pixels off the left and right...
    edited[9, 14:16] = edited[20, 14:16] = 1  # ... two onto the top and bottom: same area and centroid
    out = remeasured(edited, table).set_index("label")
    assert out.loc[1, "edited"] and out.loc[1, "perimeter"] != table["perimeter"].iloc[0]


def test_an_undone_nucleus_gets_its_first_row_with_the_users_columns_of_now():
    labels, table = _measured()
    label = int(table["label"].iloc[0])
    first = table.assign(cell_type="unknown", edited=[True] + [False] * (len(table) - 1))
    now = first.assign(cell_type="tumour")  # repainted, then classified by the user
    now.loc[0, ["area", "confidence"]] = [now.loc[0, "area"] + 5, np.nan]
    out = remeasured(labels, now, 0.25, ids=[label], first=first).set_index("label")  # ... then undone
    assert out.loc[label, "confidence"] == table.set_index("label").loc[label, "confidence"]
    assert out.loc[label, "cell_type"] == "tumour" and out.loc[label, "edited"]  # its own edited flag


def test_a_users_categorical_column_stays_categorical():
    labels, table = _measured()
    table = table.assign(kind=pd.Categorical(["a"] * len(table), categories=["a", "b"]))
    edited = labels.copy()
    edited[:4, :4] = 99
    out = remeasured(edited, table)
    assert isinstance(out["kind"].dtype, pd.CategoricalDtype) and out["kind"].isna().sum() == 1

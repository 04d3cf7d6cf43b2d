"""The custom CSV reader: path resolution, junk, validation messages naming the row."""

import pytest

from clipreid.dataset.readers import read_csv_dataset, read_dataset
from clipreid.errors import DatasetError

HEADER = "path,pid,camid,split\n"


def make_set(root, body, files=("a.jpg", "b.jpg", "c.jpg", "d.jpg")):
    """A folder with images under ``img/`` and ``labels.csv`` holding ``body``."""
    (root / "img").mkdir(parents=True)
    for name in files:
        (root / "img" / name).write_bytes(b"")
    (root / "labels.csv").write_text(HEADER + body)
    return root / "labels.csv"


def test_csv_rows_relative_and_absolute(tmp_path):
    other = tmp_path / "elsewhere.jpg"
    other.write_bytes(b"")
    csv_path = make_set(tmp_path / "set", (
        "img/a.jpg,7,0,train\n"
        "img/b.jpg,3,1,train\n"
        f"{other},3,0,query\n"
        "img/c.jpg,3,1,gallery\n"
        "img/d.jpg,-1,1,gallery\n"  # junk: dropped
    ))
    df = read_dataset({"name": "custom", "format": "csv", "root": str(tmp_path / "set"),
                       "csv": "labels.csv", "num_cameras": 2})
    got = sorted(zip(df["path"], df["pid"], df["camid"], df["split"], df["label"]))
    base = csv_path.parent
    assert got == sorted([
        (str(base / "img/a.jpg"), 7, 0, "train", 1),
        (str(base / "img/b.jpg"), 3, 1, "train", 0),
        (str(other), 3, 0, "query", -1),
        (str(base / "img/c.jpg"), 3, 1, "gallery", -1),
    ])


def test_csv_test_split_without_query_gallery(tmp_path):
    csv_path = make_set(tmp_path, "img/a.jpg,1,0,train\nimg/b.jpg,2,0,test\nimg/c.jpg,2,0,test\n")
    df = read_csv_dataset(csv_path, num_cameras=1)
    assert sorted(df["split"]) == ["test", "test", "train"]


@pytest.mark.parametrize("body, message", [
    ("img/a.jpg,1,0,train\nimg/b.jpg,x,0,query\n",
     r"labels\.csv, line 3: expected a path and integer pid"),
    ("img/a.jpg,1,0,train\nimg/b.jpg,1,5,query\n", r"labels\.csv, line 3: camid 5 outside 0\.\.1"),
    ("img/a.jpg,1,0,train\nimg/b.jpg,1,0,probe\n", r"labels\.csv, line 3: split 'probe' unknown"),
    ("img/a.jpg,1,0,train\nimg/zz.jpg,2,0,query\nimg/c.jpg,2,1,gallery\n",
     r"1 listed image\(s\) not found \(line 3: .*img/zz\.jpg"),
    ("img/a.jpg,1,0,train\nimg/b.jpg,2,0,query\n", r"'gallery' split is empty"),
    ("img/a.jpg,1,0,train\nimg/b.jpg,2,0,query\nimg/c.jpg,2,1,gallery\nimg/d.jpg,2,1,test\n",
     "mixes split 'test'"),
])
def test_csv_errors_name_the_row(tmp_path, body, message):
    csv_path = make_set(tmp_path, body)
    with pytest.raises(DatasetError, match=message):
        read_csv_dataset(csv_path, num_cameras=2)


def test_csv_missing_column_and_file(tmp_path):
    (tmp_path / "bad.csv").write_text("path,pid,split\nimg/a.jpg,1,train\n")
    with pytest.raises(DatasetError, match=r"bad\.csv: missing column\(s\) \['camid'\]"):
        read_csv_dataset(tmp_path / "bad.csv", num_cameras=1)
    with pytest.raises(DatasetError, match=r"nope\.csv not found"):
        read_csv_dataset(tmp_path / "nope.csv", num_cameras=1)


def test_a_byte_order_mark_is_read_and_other_encodings_are_named(tmp_path):
    """Spreadsheets save CSVs with a byte-order mark (read as any UTF-8 file); a Latin-1
    file stops with one line naming the file, the line and the encoding expected."""
    from clipreid.dataset.readers import read_csv_dataset
    from clipreid.errors import DatasetError

    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(b"")
    rows = "path,pid,camid,split\na.jpg,1,0,train\nb.jpg,2,0,query\nc.jpg,2,1,gallery\n"
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + rows.encode())
    df = read_csv_dataset(tmp_path / "bom.csv", num_cameras=2)
    assert sorted(df["split"]) == ["gallery", "query", "train"]
    (tmp_path / "é.jpg").write_bytes(b"")
    latin = rows + "é.jpg,3,0,train\n"
    (tmp_path / "latin.csv").write_bytes(latin.encode("latin-1"))
    with pytest.raises(DatasetError, match=r"latin.csv, line 5: not UTF-8 .*save the CSV as UTF-8"):
        read_csv_dataset(tmp_path / "latin.csv", num_cameras=2)

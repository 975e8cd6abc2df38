"""Every vendored copy is byte-identical to its canonical file, and the check notices one that is not."""
import os

from ci import vendor


def test_every_vendored_copy_is_identical_to_its_canonical_file():
    assert vendor.differing() == []


def test_the_manifest_names_existing_canonical_files_and_each_copy_once():
    copies = [c for _, cs in vendor.pieces() for c in cs]
    assert len(copies) == len(set(copies))
    for canonical, cs in vendor.pieces():
        assert os.path.isfile(os.path.join(vendor.REPO, canonical)), canonical
        assert cs, canonical


def test_a_changed_or_missing_copy_is_reported(tmp_path, monkeypatch):
    (tmp_path / "canon.py").write_text("x = 1\n")
    (tmp_path / "same.py").write_text("x = 1\n")
    (tmp_path / "drifted.py").write_text("x = 2\n")
    manifest = tmp_path / "vendored.toml"
    manifest.write_text('[[piece]]\ncanonical = "canon.py"\ncopies = ["same.py", "drifted.py", "gone.py"]\n')
    monkeypatch.setattr(vendor, "REPO", str(tmp_path))
    assert vendor.differing(str(manifest)) == [("drifted.py", "canon.py", "differs"), ("gone.py", "canon.py", "missing")]
    vendor.sync(str(manifest))
    assert vendor.differing(str(manifest)) == []

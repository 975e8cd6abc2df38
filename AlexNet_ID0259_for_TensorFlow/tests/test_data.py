"""File discovery, bad files, the photo-level split (synthetic and real photos) and the tf.data pipelines."""
import os
import resource

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import data_loader
import data_preprocessor
from conftest import REAL_PHOTOS, needs_real


def write(folder, name, mode="RGB", size=(300, 200)):
    os.makedirs(folder, exist_ok=True)
    Image.new(mode, size, (40, 90, 160) if mode == "RGB" else None).save(os.path.join(folder, name), "JPEG")
    return os.path.join(folder, name)


def test_layouts_kaggle_parent_and_original(tmp_path, photos):
    assert data_loader.resolve_folder(photos) == photos
    write(tmp_path / "parent" / "train", "cat.1.jpg")
    assert data_loader.resolve_folder(str(tmp_path / "parent")).endswith(os.path.join("parent", "train"))
    original = tmp_path / "root" / "data" / "dog_and_cat_25000_split" / "train"
    write(original, "dog.7.jpg")
    assert data_loader.resolve_folder(str(tmp_path / "root")) == str(original)


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "is not a folder"),
    (lambda d: os.makedirs(d), "is empty"),
    (lambda d: write(d, "horse.1.jpg"), "no cat.<n>.jpg"),
])
def test_unusable_folders_are_named(tmp_path, setup, message):
    folder = str(tmp_path / "data")
    setup(folder)
    with pytest.raises(data_loader.DataError, match=message):
        data_loader.list_photos(folder, log=lambda line: None)


def test_corrupt_and_empty_files_stop_the_run_or_are_skipped_named_and_counted(tmp_path):
    folder = tmp_path / "mixed"
    for n in range(3):
        write(folder, f"cat.{n}.jpg")
        write(folder, f"dog.{n}.jpg")
    (folder / "cat.9.jpg").write_bytes(b"")
    (folder / "dog.9.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    good = (folder / "dog.0.jpg").read_bytes()
    (folder / "dog.8.jpg").write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(data_loader.DataError) as err:
        data_loader.list_photos(str(folder), log=lambda line: None)
    assert str(err.value) == (f"{folder}/cat.9.jpg: not a readable JPEG (zero-byte file) (and 2 more); remove it, "
                              "or pass --skip_bad_photos=True to train without the unreadable files")
    lines = []
    entries, crops = data_loader.list_photos(str(folder), log=lines.append, skip_bad=True)
    assert len(entries) == 6 and not crops
    for name in ("cat.9.jpg", "dog.9.jpg", "dog.8.jpg"):
        assert any(line.startswith("[Warning]") and name in line for line in lines), lines
    assert "3 unreadable skipped" in lines[-1]


def test_only_corrupt_files_is_an_error(tmp_path):
    (tmp_path / "cat.1.jpg").write_bytes(b"")
    with pytest.raises(data_loader.DataError, match="readable JPEG"):
        data_loader.list_photos(str(tmp_path), log=lambda line: None, skip_bad=True)


def test_grayscale_and_cmyk_are_converted_to_three_channels(tmp_path):
    paths = [write(tmp_path, "cat.1.jpg", "L"), write(tmp_path, "dog.2.jpg", "CMYK")]
    entries, _ = data_loader.list_photos(str(tmp_path), log=lambda line: None)
    assert len(entries) == 2
    batch = next(iter(data_loader.eval_dataset(entries, 2, False, cache=False)))
    assert batch[0].shape == (2, 227, 227, 3) and paths


def test_split_keeps_each_photo_and_its_crops_on_one_side(tmp_path, photos):
    out = str(tmp_path / "pre")
    assert data_preprocessor.main([f"--data_path={photos}", f"--output_path={out}"]) == 0
    entries, crops = data_loader.list_photos(out, log=lambda line: None)
    assert crops and len(entries) == 480
    train, val = data_loader.split(entries, 0.25, seed=3)
    train_keys, val_keys = {e[2] for e in train}, {e[2] for e in val}
    assert not train_keys & val_keys and len(val_keys) == 12 and len(train) + len(val) == 480
    assert all(sum(e[2] == k for e in val) == 10 for k in val_keys)
    assert data_loader.split(entries, 0.25, seed=3) == (train, val)  # seeded


def test_split_rejects_impossible_hold_outs(photos):
    entries, _ = data_loader.list_photos(photos, log=lambda line: None)
    for bad in (0, 48, 1000):
        with pytest.raises(data_loader.DataError, match="--val_photos"):
            data_loader.split(entries, bad)


def test_training_batches_are_227_bgr_crops(photos):
    entries, _ = data_loader.list_photos(photos, log=lambda line: None)
    images, labels = next(iter(data_loader.train_dataset(entries, 8, False, cache=True)))
    assert images.shape == (8, 227, 227, 3) and images.dtype == tf.float32
    assert set(labels.numpy()) <= {0, 1}
    # Cats are drawn blue (RGB ~60,110,200): after the BGR swap channel 0 is the bright one.
    cat_pixels = images.numpy()[labels.numpy() == 0]
    if len(cat_pixels):
        assert cat_pixels[..., 0].mean() > cat_pixels[..., 2].mean()


@needs_real
def test_real_photos_split_by_photo():
    entries, crops = data_loader.list_photos(REAL_PHOTOS, log=lambda line: None)
    assert len(entries) == 2002 and not crops
    train, val = data_loader.split(entries, 1000)
    train_keys, val_keys = {e[2] for e in train}, {e[2] for e in val}
    assert len(val_keys) == 1000 and len(train_keys) == 1002 and not train_keys & val_keys
    labels = np.array([e[1] for e in val])
    assert 400 < labels.sum() < 600  # both classes held out


@needs_real
def test_real_photo_crops_stay_with_their_photo(tmp_path):
    source = tmp_path / "subset"
    source.mkdir()
    for cls in ("cat", "dog"):
        for n in range(10):
            os.symlink(os.path.join(REAL_PHOTOS, "train", f"{cls}.{n}.jpg"), source / f"{cls}.{n}.jpg")
    out = str(tmp_path / "pre")
    assert data_preprocessor.main([f"--data_path={source}", f"--output_path={out}"]) == 0
    entries, crops = data_loader.list_photos(out, log=lambda line: None)
    assert crops and len(entries) == 200
    train, val = data_loader.split(entries, 5)
    for key in {e[2] for e in entries}:
        sides = {e[2] == key and e in val for e in entries if e[2] == key}
        assert len(sides) == 1 and sum(e[2] == key for e in train + val) == 10


def test_inputs_of_one_worker_are_its_shards(photos):
    entries, crops = data_loader.list_photos(photos, log=lambda line: None)
    train, val = data_loader.split(entries, 8)
    inputs = data_loader.inputs(train, val, 4, crops, cache=False, shards=2, shard=1)
    assert (inputs.train_images, inputs.held_out_images) == (20, 4)
    train_ds, held_out_ds = inputs.datasets()
    held_out_labels = np.concatenate([labels.numpy() for _, labels in held_out_ds.take(1)])
    assert list(held_out_labels) == [e[1] for e in val[1::2]]  # the second worker's held-out photos, in order
    assert next(iter(train_ds))[0].shape == (4, 227, 227, 3)


def test_pca_jitter_is_the_originals_per_crop_pca():
    """The original's recipe in numpy (channels standardised per crop, np.cov, eigen-decomposition, the shift
    in standardised units, mapped back, clipped) against the pipeline's tf version; a flat channel stays finite."""
    rng = np.random.RandomState(3)
    image = rng.randint(0, 256, (20, 30, 3)).astype(np.uint8)
    image[..., 2] = image[..., 0] // 2 + 100  # correlated channels: a non-trivial eigen-basis
    alpha = np.array([0.3, -0.2, 0.15], np.float32)
    pixels = image.reshape(-1, 3).astype(np.float64)
    mean, std = pixels.mean(0), pixels.std(0)
    unit = (pixels - mean) / std
    eigval, eigvec = np.linalg.eigh(np.cov(unit, rowvar=False))
    ours = data_loader.pca_jitter(tf.constant(image), tf.constant(alpha)).numpy()
    # An eigenvector's sign is arbitrary (so is alpha's): the result matches for one choice of signs.
    errors = [np.abs(ours - np.clip((unit + eigvec @ (alpha * signs * eigval)) * std + mean, 0, 255)
                     .reshape(image.shape)).max() for signs in np.array(np.meshgrid(*[[1, -1]] * 3)).reshape(3, -1).T]
    assert min(errors) < 1e-2 and max(errors) > 1, errors
    flat = image.copy()
    flat[..., 1] = 77
    jittered = data_loader.pca_jitter(tf.constant(flat), tf.constant(alpha)).numpy()
    assert np.isfinite(jittered).all() and np.allclose(jittered[..., 1], 77, atol=0.01)  # exact statistics: no shift


def test_preprocessing_that_finds_no_room_is_one_line(tmp_path, photos, capsys):
    """A file size limit (EFBIG: the same code path as a full disk's ENOSPC) below one crop's size. PIL's own
    file writer ignored the short write and left a cut JPEG with exit status 0."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100, hard))
    try:
        status = data_preprocessor.main([f"--data_path={photos}", f"--output_path={tmp_path / 'pre'}"])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1, err
    assert err[0] == f"[Error] File too large writing {tmp_path / 'pre' / 'train'}: raise the file size limit " \
        "(ulimit -f), and run again"

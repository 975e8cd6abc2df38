"""Offline crop preparation, as the original: every photo resized to shorter side 256, then the four corner
and the centre 227x227 crops, each also mirrored: 10 files per photo, named
<class>.<9-digit photo id><crop digit 0-9>.jpg in <output_path>/train/.

    python3 data_preprocessor.py --data_path=<cat.<n>.jpg/dog.<n>.jpg folder> [--output_path=data/data_preprocessed]

main.py reads the result (--data_path=<output_path> or its parent) and still splits by source photo.
On-the-fly augmentation in main.py makes this step optional.
"""
import io
import os
import sys

from PIL import Image

import cli
import run_report
import run_safety


def ten_crops(image):
    import data_loader  # here, not at the top: main() parses the flags before TensorFlow loads
    from model import INPUT_SIZE
    width, height = image.size
    scale = data_loader.RESIZE_SHORTER / min(width, height)
    image = image.resize((max(data_loader.RESIZE_SHORTER, round(width * scale)),
                          max(data_loader.RESIZE_SHORTER, round(height * scale))), Image.BILINEAR)
    width, height = image.size
    corners = [(0, 0), (width - INPUT_SIZE, 0), (0, height - INPUT_SIZE), (width - INPUT_SIZE, height - INPUT_SIZE),
               ((width - INPUT_SIZE) // 2, (height - INPUT_SIZE) // 2)]
    crops = [image.crop((x, y, x + INPUT_SIZE, y + INPUT_SIZE)) for x, y in corners]
    return crops + [c.transpose(Image.FLIP_LEFT_RIGHT) for c in crops]


def write_crops(entries, target):
    os.makedirs(target, exist_ok=True)
    progress = run_report.Progress(len(entries), unit="photo")
    for done, (path, _, key) in enumerate(entries, 1):
        cls, photo = key.split(".")
        with Image.open(path) as img:
            for i, crop in enumerate(ten_crops(img.convert("RGB"))):
                # Encoded in memory, written by Python: PIL's own file writer ignores a short write (a full
                # disk), which would leave a cut JPEG and no error.
                encoded = io.BytesIO()
                crop.save(encoded, "JPEG", quality=95)
                with open(os.path.join(target, f"{cls}.{int(photo):09d}{i}.jpg"), "wb") as handle:
                    handle.write(encoded.getbuffer())
        progress.update(done)


def main(argv):
    p = cli.Parser(prog="data_preprocessor.py", description=__doc__.splitlines()[0])
    p.add_argument("--data_path", required=True)
    p.add_argument("--output_path", default=os.path.join("data", "data_preprocessed"))
    args = p.parse_args(argv)
    import data_loader  # after the flags: TensorFlow comes with it
    try:
        entries, crops = data_loader.list_photos(args.data_path, skip_bad=True)
    except data_loader.DataError as err:
        sys.stderr.write(f"[Error] {err}\n")
        return 1
    if crops:
        sys.stderr.write(f"[Error] --data_path: {args.data_path} already holds crop files\n")
        return 1
    target = os.path.join(args.output_path, "train")
    try:
        write_crops(entries, target)
    except OSError as err:  # 10 crops per photo: 250,000 files for the whole set
        room = run_safety.no_room(err, target)
        if room is None:
            raise
        sys.stderr.write(f"[Error] {room}, and run again\n")
        return 1
    print(f"wrote {10 * len(entries)} crops of {len(entries)} photos to {target}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main(sys.argv[1:]))

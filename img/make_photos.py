"""Convert scikit-image's sample photos into the small PNG files that cnnlab bundles.

Run once from the repository root (scikit-image is needed only here, not at run time):

    pip install scikit-image
    python img/make_photos.py

Each photo is resized with Pillow's Lanczos filter so that its long side is at most
MAX_SIDE pixels, and saved as an RGB uint8 PNG in ``cnnlab/photos/``, where the package reads
them as package data. Sources and licenses are in img/ATTRIBUTION.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

MAX_SIDE = 400
# our file stem -> name of the function in skimage.data
PHOTOS = {"cat": "chelsea", "astronaut": "astronaut", "coffee": "coffee"}


def downscale(pixels: np.ndarray, max_side: int = MAX_SIDE) -> Image.Image:
    """An (H, W, 3) uint8 array as a Pillow image whose long side is at most max_side."""
    image = Image.fromarray(np.ascontiguousarray(pixels[..., :3], dtype=np.uint8))
    scale = max_side / max(image.size)
    if scale < 1:
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def main() -> None:
    import skimage
    import skimage.data

    out_dir = Path(__file__).resolve().parent.parent / "cnnlab" / "photos"
    out_dir.mkdir(exist_ok=True)
    for stem, source in PHOTOS.items():
        image = downscale(getattr(skimage.data, source)())
        path = out_dir / f"{stem}.png"
        image.save(path, optimize=True)
        print(f"cnnlab/photos/{path.name}: {image.height}x{image.width} from "
              f"skimage.data.{source}() (scikit-image {skimage.__version__}), "
              f"{path.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()

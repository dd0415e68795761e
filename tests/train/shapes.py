"""The issue's two-class example: a folder of circles and squares, 80
training and 24 validation images (train/ and validation/ sub-folders)."""
import numpy as np
from PIL import Image, ImageDraw


def write_shapes(root, train_per_class=40, val_per_class=12, size=64, seed=0):
    """Draws outlined or filled circles and squares of random size, place and
    colours on a random background; returns `root`."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("validation", val_per_class)):
        for shape in ("circle", "square"):
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                background = tuple(int(v) for v in rng.integers(0, 100, 3))
                ink = tuple(int(v) for v in rng.integers(140, 256, 3))
                image = Image.new("RGB", (size, size), background)
                draw = ImageDraw.Draw(image)
                radius = rng.uniform(0.18, 0.35) * size
                cx, cy = rng.uniform(radius + 2, size - radius - 2, 2)
                box = [cx - radius, cy - radius, cx + radius, cy + radius]
                fill = ink if rng.random() < 0.5 else None
                width = int(rng.integers(2, 5))
                if shape == "circle":
                    draw.ellipse(box, fill=fill, outline=ink, width=width)
                else:
                    draw.rectangle(box, fill=fill, outline=ink, width=width)
                image.save(folder / f"{i:03d}.png")
    return root

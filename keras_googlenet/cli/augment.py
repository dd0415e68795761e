"""`googlenet augment`: a PNG grid of training augmentations of image files,
to see what the paper's augmentation does to your data."""
from keras_googlenet.cli import flags


def add_arguments(parser):
    parser.add_argument("images", nargs="+", help="image files, one grid row each")
    parser.add_argument("--output", default="augmentation.png",
                        help="the PNG file to write; default: augmentation.png")
    parser.add_argument("-n", type=flags.positive_int, default=8,
                        help="augmented versions per image; default: 8")
    flags.add_seed(parser, default=0)
    parser.add_argument("--image-size", type=flags.positive_int, default=224,
                        help="cell size in pixels; default: 224")
    parser.add_argument("--min-crop-area", type=flags.fraction, default=0.08,
                        help="smallest crop, as a fraction of the image area; default: 0.08 "
                             "(the paper)")
    parser.add_argument("--no-flip", action="store_true",
                        help="no horizontal flips; default: random flips, as in the paper")


def run(args):
    from keras_googlenet.data import augment

    config = augment.AugmentConfig(area_range=(args.min_crop_area, 1.0),
                                   random_flip=not args.no_flip)
    path = augment.augmentation_grid(args.images, args.output, n=args.n, seed=args.seed,
                                     image_size=args.image_size, config=config)
    print(path)
    return 0

"""Named training recipes, as data: `googlenet train --recipe NAME`."""

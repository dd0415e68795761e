"""Named training recipes, as data: `googlenet train --config NAME`."""

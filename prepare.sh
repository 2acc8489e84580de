#!/usr/bin/env bash
# Data preparation only: a recipe's stages up to its last data stage (`prepare_stop_stage` in
# recipes/NAME/recipe.sh: corpus, features, lang). Same options as run.sh.
exec "$(dirname "$0")/run.sh" --prepare-only true "$@"

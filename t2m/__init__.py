"""t2m: topic to explanatory Manim video."""

import os

# litellm fetches its model cost map from the network at import unless told otherwise; t2m must
# work offline, so every process that may import litellm is told before it can.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

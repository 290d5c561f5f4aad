"""Which config fields stay out of a run's key (docs/DESIGN.md, Run keys).

A model config's dataclass field declared with ``metadata=UNKEYED`` is left out of the run key
(:func:`fgvc_lib.study.jobs.run_key`): no model or loss reads it (the paper's recipe recorded for a plan table
or a test), or it reaches the key another way (copied into the variant's TrainConfig). Editing it then keeps
every stored run. A module of its own so that models, which never import the study runner, can mark fields.
"""
RUN_KEY = "run_key"            # the field metadata entry: False keeps the field out of the key
UNKEYED = {RUN_KEY: False}
KEYED_WHEN_SET = {RUN_KEY: "when set"}   # in the key only when not None: a field added later that leaves the
# keys of configs that do not set it (and so their stored runs) as they were

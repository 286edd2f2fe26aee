"""The name under which cymlp 0.1.0 pickled its stochastic optimizer.

A pickle names each object's class by module and name; models pickled by
cymlp 0.1.0 name ``cymlp._training._Optimizer``, so that name must resolve
for them to load. Unpickling makes an instance holding the old attributes,
and :class:`cymlp._persistence._PersistenceMixin` turns it into today's
optimizer (:mod:`cymlp._optimizers`). Nothing else lives here.
"""


class _Optimizer:
    """A stochastic optimizer as cymlp 0.1.0 pickled it: attributes only."""

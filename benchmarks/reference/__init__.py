"""Re-implementation of the published Meta Flow Matching code, for speed comparisons only.

Atanackovic et al. 2024, github.com/lazaratan/meta-flow-matching (letters experiment:
``src/models/components/gnn.py`` ``GlobalGNN``, ``src/models/letters_module.py``
``LettersMFM``, ``src/conf/experiment/letters_mfm.yaml``). Nothing in ``src/mfm`` imports this
package; the benchmarks put it beside our code in one process.

Modules
-------
``model``
    ``ReferenceGNNFlow``: PyTorch Geometric ``GCNConv`` encoder on a kNN graph built on the
    CPU (scikit-learn here, torch-cluster there) + Fourier-feature velocity MLP. Needs
    ``torch_geometric``.
``trainer``
    ``ReferenceTrainer``: two Adam optimisers updated on alternating steps with cached
    population embeddings, and ``ReferenceLoader``, the letters batch draw.
``solve``
    ``reference_integrate``: adaptive dopri5 with 500 output times (no ``torch_geometric``).
"""

__all__: list[str] = []

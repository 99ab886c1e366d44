"""The papers stage: each paper's tables and figures, one module per paper (:mod:`.threeplayer`, :mod:`.disgan`,
:mod:`.augment`), the method comparison tables they share (:mod:`.tables`), and one look (:mod:`.style`).

Labelled inputs arrive as a list of records, each with a ``label`` and a ``path`` (and, for the noise table, the
``sigma`` of the noise added), in the order the table or figure shows them.
"""

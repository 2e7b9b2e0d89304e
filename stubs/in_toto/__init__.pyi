# Type stubs for the parts of in-toto 3.x that provenance uses (in-toto ships no
# py.typed). Only what provenance.pipeline calls is declared; see stubs/README.md.

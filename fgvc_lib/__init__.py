"""fgvc_lib: the helper library behind the FGVC attention reproducibility notebooks."""
__version__ = "0.1.0"

"""The compiled parts of pvc: the C stat walk behind `status` and `commit` on an untouched tree, the reading of
pages from their bytes behind `diff` between versions, and the file creation loop of `restore` and `clone`.

All three are optional: where they do not build, pvc does the same work in Python (slower, same results)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("pvc._walk", ["pvc/_walk.c"], optional=True, extra_compile_args=["-O2", "-pthread"], extra_link_args=["-pthread"]),
                   Extension("pvc._files", ["pvc/_files.c"], optional=True, extra_compile_args=["-O2"]),
                   Extension("pvc._pages", ["pvc/_pages.c"], optional=True, extra_compile_args=["-O2"])])

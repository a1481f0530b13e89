"""The one compiled part of pvc: the C stat walk behind `status` and `commit` on an untouched tree.

It is optional: where it does not build, pvc runs the same walk in Python (slower, same results)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("pvc._walk", ["pvc/_walk.c"], optional=True, extra_compile_args=["-O2", "-pthread"], extra_link_args=["-pthread"])])

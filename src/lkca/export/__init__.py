"""Export trained models to other runtimes: ONNX (:mod:`lkca.export.onnx_export`), and the
``lkca export`` command (:mod:`lkca.export.commands`)."""

"""The custom TFX components: patch ExampleGen (the Beam writer inside TFX), the validation
gate, the SR evaluator with its settings and report, and the importer of models trained
elsewhere."""

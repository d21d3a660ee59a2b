"""The trainer: a folder of photos in, the ONNX model the API serves out.

Commands (``python -m trainer.<command>``)::

    fit       train a run (or --resume one), report, export        trainer/fit.py
    export    export a run again, or publish it                    trainer/export.py
    evaluate  score a served model on a labelled folder            trainer/evaluate.py
    prepare   a cleaned, shrunken copy of an image folder          trainer/prepare.py
    demo      the whole flow offline, on synthetic data            trainer/demo.py

Library, each layer importing only those above it::

    common/      atomic writes, hashes, progress bars
    data/        folders -> scan -> near-duplicate groups -> split.json; datasets, augmentation
    model/       torchvision backbones, the classifier (blocks, mirror, head), the known score
    learning/    config; the solved head (default: recipe, linear_solver, rejection_rule) or
                 epochs, on a shared run; checkpoints and resume
    exporting/   ONNX graph, parity gate, INT8, "unknown" rule, runtime check, publish
    evaluation/  scoring through the API's Predictor, metrics, report.md, model card, plots

One ``trainer.fit DATA`` run::

    fit.start      data.folders.discover, model.classifier.build_model, data.split.prepare_split
    fit.fit        learning.solved_head.SolvedHead.fit: feature views -> recipe.fit_recipe
                   (linear_solver, rejection_rule) -> recipe.cross_validate (no test split)
                   -> best.pt; evaluation.run_report (report.md, pictures)
    export.export_run
                   exporting.steps: load -> temperature -> rejection.rule -> fp32_with_parity
                   -> int8 -> with_metadata -> parity.runtime_check -> write
                   evaluation.test_split (the estimate: test, or cross-validation)
                   -> model_card, report.md
                   exporting.publish (with --publish)
"""

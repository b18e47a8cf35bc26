"""Smith's controller: watches Bundles, Executors and every managed object, and runs the reconcile
(assess -> plan -> apply/delete -> report) for a Bundle whenever something about it changes."""

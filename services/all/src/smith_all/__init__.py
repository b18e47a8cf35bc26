"""Smith in one process: the controller, planner, status service, executors and the sample plugin on one
event loop, calling each other in-process (see __main__)."""

"""The restore pipeline: plan which server and tools, run them inside the sandbox, report."""

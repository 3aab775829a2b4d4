# The two dtypes the core computes in: every typed step is written once over them.
ctypedef fused floating:
    float
    double

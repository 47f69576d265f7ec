"""expected_output_test(): a program's output compared with a file."""

def expected_output_test(program):
    """<program>_output_test: runs :<program>, compares with <program>.expected."""
    native.sh_test(
        name = program + "_output_test",
        size = "small",
        srcs = ["expect_output.sh"],
        args = [
            "$(location :%s)" % program,
            "$(location %s.expected)" % program,
        ],
        data = [
            program + ".expected",
            ":" + program,
        ],
    )

"""The one set of compiler options every gls target uses."""

GLS_COPTS = [
    "-Werror=return-type",
    "-Wshadow",
    "-Wnon-virtual-dtor",
]

"""Static pages: the duty console and the bureau page (HTML, CSS, JavaScript). A package only so
that the files ship with the wheel; nothing here is imported."""

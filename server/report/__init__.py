"""Reports of a segmentation: Markdown and terminal (`markdown`), HTML page (`page`, `charts`), PNG (`screenshot`)."""

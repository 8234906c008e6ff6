# The course's two commands (see README):
#   make book   set up .venv, make the default data, build and execute the whole book -> _build/html
#   make test   set up .venv, run the unit tests and every chapter with its solutions (nbval, test profile),
#               build the executed book (warnings as errors) and open every page in headless Chromium
# Everything runs from a fresh clone with only Python 3.11+ and make.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The chapters, in book order, read from _toc.yml (so a chapter cannot be left out of `make test`).
CHAPTERS = $(shell $(PY) -m mvgtutor.book chapters)
# Workers for pytest-xdist: CI's 2 cores, fewer on request (JOBS=1 make test).
JOBS ?= 2
NBVAL_CELL_TIMEOUT ?= 900
# nbval runs each chapter once, from a copy with its exercises' solutions appended as code cells (mvgtutor.book).
NBVAL_DIR = _build/nbval

.PHONY: install browser data book book-instructor student test test-unit test-chapters test-book test-instructor \
	test-browser clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@echo "[make] $$(date +%T) install the course into $(VENV)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	$(MAKE) --no-print-directory browser
	touch $(STAMP)

# The browser test's Chromium: Debian's package (Playwright drives it; it downloads no browser of its own). Installed
# only where apt-get runs as root (CI); elsewhere the browser test skips and says why.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium >/dev/null) || echo "chromium could not be installed: the browser test will skip"; \
	else echo "no chromium and no root apt-get: the browser test will skip"; fi

# The embedded default dataset of the active profile (MVGTUTOR_PROFILE, default colab/cpu by hardware).
data: install
	$(PY) -m mvgtutor simulate --default

book: install data
	$(PY) -m mvgtutor.book config --out _build/configs/book.yml
	$(VENV)/bin/jupyter-book build . --config _build/configs/book.yml
	@echo "Book: _build/html/index.html"

# The instructor edition: the same book with the exercise solutions shown.
book-instructor: install data
	$(PY) -m mvgtutor.book config --solutions show --out _build/configs/instructor.yml
	$(VENV)/bin/jupyter-book build . --config _build/configs/instructor.yml --path-output _build/instructor

# The students' Colab copies of the chapters (no solutions), student/book/*.ipynb: run after editing a chapter
# (tests/test_chapters.py fails while a copy is stale).
student: install
	$(PY) -m mvgtutor.book student

# One thread per pytest-xdist worker: two workers on two cores, each with its own pool of threads, were up
# to 30x slower (oversubscription). The browser test runs last, on the book that test-book built.
test: install otter-env
	@echo "[make test] $$(date +%T) simulate the test data"
	MVGTUTOR_PROFILE=test $(PY) -m mvgtutor simulate --default
	$(PY) -m mvgtutor.book with-solutions --out $(NBVAL_DIR) > /dev/null
	@echo "[make test] $$(date +%T) unit tests and every chapter (nbval)"
	MVGTUTOR_PROFILE=test OMP_NUM_THREADS=1 $(PY) -m pytest -n $(JOBS) --dist loadfile --durations=25 tests \
		--ignore=tests/test_browser.py \
		--nbval-lax --nbval-cell-timeout=$(NBVAL_CELL_TIMEOUT) $(addprefix $(NBVAL_DIR)/,$(CHAPTERS))
	@echo "[make test] $$(date +%T) the executed book"
	$(MAKE) --no-print-directory test-book
	@echo "[make test] $$(date +%T) the instructor edition"
	$(MAKE) --no-print-directory test-instructor
	@echo "[make test] $$(date +%T) both editions in the browser"
	$(MAKE) --no-print-directory test-browser
	@echo "[make test] $$(date +%T) done"

# The execution cache shared by the check build and the instructor check: each chapter executes once for both.
EXEC_CACHE = _build/.jupyter_cache

# Build the book WITH execution in the test profile, warnings as errors: a broken _toc.yml, cross-reference,
# citation or exercise label, or a failing cell, fails here. The training runs come from the run cache that the
# chapters' nbval run filled, so this costs the chapters' forward passes and figures, not their training; fill-cache
# executes the chapters $(JOBS) at a time into the execution cache first (mvgtutor.bookcache), and the build reads
# them from there. A chapter that fails there is executed again by the build, which reports the error.
test-book: install
	$(PY) -m mvgtutor.book config --execute cache --cache $(EXEC_CACHE) --out _build/configs/check.yml
	-MVGTUTOR_PROFILE=test OMP_NUM_THREADS=1 $(PY) -m mvgtutor.book fill-cache --cache $(EXEC_CACHE) --jobs $(JOBS)
	MVGTUTOR_PROFILE=test $(VENV)/bin/jupyter-book build . --config _build/configs/check.yml \
		--path-output _build/check -W --keep-going --all

# The instructor edition (solutions shown) from the same execution cache: no notebook executes again.
test-instructor: install
	$(PY) -m mvgtutor.book config --execute cache --cache $(EXEC_CACHE) --solutions show \
		--out _build/configs/instructor-check.yml
	MVGTUTOR_PROFILE=test $(VENV)/bin/jupyter-book build . --config _build/configs/instructor-check.yml \
		--path-output _build/instructor -W --keep-going --all

# Every page of both builds in headless Chromium, offline; screenshots in _build/screenshots/ (tests/test_browser.py).
test-browser: install
	MVGTUTOR_PROFILE=test OMP_NUM_THREADS=1 $(PY) -m pytest tests/test_browser.py -q -rs

clean:
	rm -rf _build .pytest_cache

# The autograded ablation assignment (otter-grader, see book/instructor_guide.ipynb). otter-grader 7.0.0 pins
# wrapt<2 and the course pins wrapt 2.5.2, so otter gets its own environment, .venv-otter, which sees the course's
# .venv behind its own packages (a .pth line). `make assignment` writes the student version (solutions and hidden
# tests stripped) to _build/assignment/student and the graded instructor version (solutions, all tests, the
# autograder zip) to _build/assignment/autograder. The solution is not run at build time (--no-run-tests): its answers
# come from runs the student makes (seed 3), which an instructor's checkout does not have.
OTTER_VENV ?= .venv-otter
OTTER_STAMP := $(OTTER_VENV)/.installed
ASSIGNMENT ?= book/assignments/ablation_lab/ablation_lab.ipynb

.PHONY: otter-env assignment

otter-env: $(OTTER_STAMP)

$(OTTER_STAMP): $(STAMP)
	@echo "[make] $$(date +%T) install the autograder into $(OTTER_VENV)"
	test -x $(OTTER_VENV)/bin/python || $(PYTHON) -m venv $(OTTER_VENV)
	echo "import site; site.addsitedir('$$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")')" \
		> "$$($(OTTER_VENV)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/zz_mvgtutor_venv.pth"
	$(OTTER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check otter-grader==7.0.0
	touch $(OTTER_STAMP)

assignment: otter-env
	rm -rf _build/assignment
	$(OTTER_VENV)/bin/otter assign --no-run-tests $(ASSIGNMENT) _build/assignment
	@echo "Student version: _build/assignment/student   Instructor version: _build/assignment/autograder"

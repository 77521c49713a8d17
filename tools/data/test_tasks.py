#!/usr/bin/env python3
"""Tests of the synthetic tasks (tasks.py): generated answers pass the checker, and wrong or malformed answers
fail it. The checker scores the default models (models/README.md), so it must not be wrong either way.

  python3 tools/data/test_tasks.py
"""
import random
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tasks  # noqa: E402


class GeneratedPairs(unittest.TestCase):
    def test_every_generated_answer_checks_and_sudokus_are_unique(self):
        for task in tasks.TASKS:
            rng = random.Random(f"test/{task}")
            for _ in range(40 if task == "sudoku9" else 300):
                prompt, answer = tasks.generate(task, rng)
                self.assertTrue(tasks.check(task, prompt, answer), (task, prompt, answer))
                if task.startswith("sudoku"):
                    self.assertTrue(tasks.has_unique_solution(task, prompt), prompt)

    def test_generation_is_deterministic(self):
        for task in tasks.TASKS:
            first = [tasks.generate(task, random.Random("seed")) for _ in range(3)]
            self.assertEqual(first, [tasks.generate(task, random.Random("seed")) for _ in range(3)])


class Checker(unittest.TestCase):
    """Hand-written cases, independent of the generator."""

    def test_addition(self):
        self.assertTrue(tasks.check("add", "12345+678=", "13023"))
        self.assertTrue(tasks.check("add", "0+0=", "0"))
        for wrong in ["13024", "013023", "13023 ", "", "1e4", "-13023"]:
            self.assertFalse(tasks.check("add", "12345+678=", wrong), wrong)
        self.assertFalse(tasks.check("add", "012+1=", "13"), "a malformed prompt")

    def test_sorting(self):
        self.assertTrue(tasks.check("sort", "sort 5 3 91 1 7:", "1 3 5 7 91"))
        self.assertTrue(tasks.check("sort", "sort 4 4 2:", "2 4 4"))
        for wrong in ["1 3 5 91 7", "1 3 5 7", "1 3 5 7 91 91", "1  3 5 7 91", "1 3 5 7 091", ""]:
            self.assertFalse(tasks.check("sort", "sort 5 3 91 1 7:", wrong), wrong)
        self.assertFalse(tasks.check("sort", "sort 4 4 2:", "2 2 4"), "a different multiset")

    def test_reversal(self):
        self.assertTrue(tasks.check("reverse", "reverse a b c d e:", "e d c b a"))
        for wrong in ["a b c d e", "e d c b", "edcba", "e d c b a ", ""]:
            self.assertFalse(tasks.check("reverse", "reverse a b c d e:", wrong), wrong)

    def test_sudoku4(self):
        prompt = "sudoku 1.3./.4../..../2..1:"
        self.assertTrue(tasks.check("sudoku4", prompt, "1234/3412/4123/2341"))
        for wrong in [
            "1234/3412/4321/2143",  # valid grid, but not the givens' (last row)
            "1234/3412/4123/2314",  # a repeated digit in a column
            "1234/3412/4123/234",  # a short row
            "1234/3412/4123/2341/",  # an extra row
            "1.34/3412/4123/2341",  # a blank left
            "",
        ]:
            self.assertFalse(tasks.check("sudoku4", prompt, wrong), wrong)
        # A grid with two solutions: either counts, the checker reads the rules, not a stored answer.
        open_prompt = "sudoku ..../..../..../....:"
        self.assertTrue(tasks.check("sudoku4", open_prompt, "1234/3412/2143/4321"))
        self.assertTrue(tasks.check("sudoku4", open_prompt, "2143/4321/1234/3412"))
        self.assertFalse(tasks.has_unique_solution("sudoku4", open_prompt))

    def test_sudoku9(self):
        solution = "534678912/672195348/198342567/859761423/426853791/713924856/961537284/287419635/345286179"
        prompt = "sudoku " + solution.replace("5", ".", 3) + ":"
        self.assertTrue(tasks.check("sudoku9", prompt, solution))
        swapped = solution[:1] + solution[2] + solution[1] + solution[3:]
        self.assertFalse(tasks.check("sudoku9", prompt, swapped))

    def test_unknown_task_is_an_error(self):
        with self.assertRaises(ValueError):
            tasks.check("multiply", "2*3=", "6")


if __name__ == "__main__":
    unittest.main()

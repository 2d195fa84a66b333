"""Plain first and last names for the registry's user_name (no commas, quotes or escapes,
so a name never breaks the CSV or JSON encoding)."""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
    "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
    "Thomas", "Sarah", "Carlos", "Karen", "Daniel", "Lisa", "Matthew", "Nancy",
    "Anthony", "Betty", "Mark", "Maria", "Steven", "Sandra", "Andrew", "Ashley",
    "Kevin", "Emily", "Brian", "Michelle", "Wei", "Aisha", "Jose", "Priya",
    "Hiroshi", "Fatima", "Luis", "Olga", "Kwame", "Mei", "Diego", "Amara",
)

LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
    "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson",
    "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker",
    "Young", "Allen", "King", "Wright", "Scott", "Nguyen", "Hill", "Flores", "Green",
    "Patel", "Kim", "Chen", "Okafor", "Novak", "Tanaka", "Cohen", "Silva",
)

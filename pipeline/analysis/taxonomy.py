"""The topic taxonomy: the labels `analysis_results.topics` can hold.

Each label has a description written as the vocabulary a transcript on that subject tends to
use. The analysis stage embeds "label. description" once per process and scores a
transcript (and each of its chapters) by cosine similarity to those embeddings; see
`pipeline.analysis.analyze`.
Labels are lowercase, short and stable: clients filter on them. Add labels freely; renaming
one breaks stored results' meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Topic:
    label: str
    description: str


TAXONOMY: tuple[Topic, ...] = (
    # Technology and science
    Topic(
        "technology",
        "Gadgets, smartphones, computers, chips, devices, the internet and new tech products; "
        "innovation from tech companies and consumer electronics.",
    ),
    Topic(
        "software",
        "Software development and programming: code, bugs, releases, APIs, databases, servers, "
        "deployment, testing, developers writing applications.",
    ),
    Topic(
        "artificial intelligence",
        "Artificial intelligence and machine learning: neural networks, training models, data "
        "sets, chatbots, language models, automation.",
    ),
    Topic(
        "cybersecurity",
        "Security and privacy online: hackers, malware, passwords, data breaches, encryption, "
        "phishing, vulnerabilities and attacks.",
    ),
    Topic(
        "science",
        "Scientific research and discovery: experiments, physics, chemistry, biology, "
        "laboratories, scientists, theories and evidence.",
    ),
    Topic(
        "space",
        "Space and astronomy: planets, stars, galaxies, rockets, satellites, NASA, astronauts, "
        "telescopes and the universe.",
    ),
    Topic(
        "mathematics",
        "Mathematics: numbers, equations, algebra, geometry, calculus, proofs, statistics and "
        "probability.",
    ),
    Topic(
        "energy",
        "Energy: electricity, oil and gas, solar panels, wind power, batteries, nuclear power, "
        "the grid and fuel prices.",
    ),
    # Money and work
    Topic(
        "finance",
        "Money and finance: banks, loans, interest rates, savings, budgets, stocks, bonds, "
        "investing, portfolios, markets, inflation and taxes.",
    ),
    Topic(
        "economy",
        "The economy: growth, GDP, recession, unemployment, trade, central banks, government "
        "spending, wages and prices across a country.",
    ),
    Topic(
        "business",
        "Business and companies: startups, management, revenue, customers, strategy, "
        "entrepreneurs, corporate deals and leadership.",
    ),
    Topic(
        "cryptocurrency",
        "Cryptocurrency: bitcoin, ethereum, blockchain, tokens, wallets, mining, exchanges and "
        "decentralized finance.",
    ),
    Topic(
        "real estate",
        "Real estate and housing: buying a home, mortgages, rent, property prices, landlords, "
        "apartments and agents.",
    ),
    Topic(
        "careers",
        "Jobs and careers: job interviews, resumes, hiring, salaries, promotions, the "
        "workplace, bosses and colleagues.",
    ),
    Topic(
        "marketing",
        "Marketing and advertising: brands, campaigns, social media growth, audiences, sales "
        "funnels, SEO and promotion.",
    ),
    # Society
    Topic(
        "politics",
        "Politics and government: elections, voting, parties, presidents, parliament, policy, "
        "campaigns and political debate.",
    ),
    Topic(
        "law",
        "Law and justice: courts, judges, lawyers, lawsuits, trials, rights, legislation and "
        "regulations.",
    ),
    Topic(
        "crime",
        "Crime: police, investigations, murder, theft, arrests, criminals, victims and prison.",
    ),
    Topic(
        "military",
        "War and the military: armies, soldiers, weapons, battles, conflicts, defense and "
        "veterans.",
    ),
    Topic(
        "history",
        "History: past centuries, ancient civilizations, empires, kings, historical events, "
        "wars of the past and archaeology.",
    ),
    Topic(
        "religion",
        "Religion and faith: God, church, prayer, scripture, spirituality, belief and religious "
        "traditions.",
    ),
    Topic(
        "philosophy",
        "Philosophy: ethics, morality, meaning, consciousness, free will, philosophers and big "
        "questions about existence.",
    ),
    Topic(
        "education",
        "Education: schools, teachers, students, classes, universities, exams, homework and "
        "learning.",
    ),
    Topic(
        "environment",
        "Environment and climate: climate change, pollution, emissions, recycling, "
        "sustainability, forests and conservation.",
    ),
    Topic(
        "weather",
        "Weather: forecasts, rain, storms, temperatures, snow, heat waves, hurricanes and the "
        "seasons.",
    ),
    # Health and people
    Topic(
        "health",
        "Health and medicine: doctors, hospitals, disease, symptoms, treatment, vaccines, "
        "medication and patients.",
    ),
    Topic(
        "fitness",
        "Fitness and exercise: workouts, the gym, weight training, running, cardio, muscles, "
        "stretching and training plans.",
    ),
    Topic(
        "nutrition",
        "Nutrition and diet: calories, protein, vitamins, healthy eating, weight loss and "
        "dietary choices.",
    ),
    Topic(
        "mental health",
        "Mental health and psychology: stress, anxiety, depression, therapy, emotions, "
        "mindfulness and wellbeing.",
    ),
    Topic(
        "relationships",
        "Relationships: dating, love, marriage, friendship, breakups, partners and "
        "communication between people.",
    ),
    Topic(
        "parenting",
        "Parenting and family: raising children, babies, toddlers, parents, kids' behavior and "
        "family life.",
    ),
    # Everyday life
    Topic(
        "cooking",
        "Cooking and recipes: ingredients, kitchen, baking, frying, sauce, flavor, meals, "
        "chefs, ovens and dishes to prepare.",
    ),
    Topic(
        "restaurants",
        "Eating out: restaurants, cafes, menus, waiters, food reviews, dining and bars.",
    ),
    Topic(
        "travel",
        "Travel: trips, flights, hotels, tourists, destinations, vacations, passports, "
        "sightseeing and packing.",
    ),
    Topic(
        "fashion",
        "Fashion and clothing: outfits, style, designers, dresses, shoes, trends and shopping "
        "for clothes.",
    ),
    Topic(
        "beauty",
        "Beauty and personal care: makeup, skincare, hair, cosmetics, routines and beauty "
        "products.",
    ),
    Topic(
        "home improvement",
        "Home improvement and DIY: renovation, tools, painting walls, furniture, repairs, "
        "plumbing and decorating.",
    ),
    Topic(
        "gardening",
        "Gardening: plants, flowers, vegetables, soil, seeds, watering, pruning and the backyard.",
    ),
    Topic(
        "pets",
        "Pets and animals at home: dogs, cats, puppies, training pets, veterinarians and pet food.",
    ),
    Topic(
        "wildlife",
        "Nature and wildlife: wild animals, birds, oceans, forests, ecosystems, species and "
        "national parks.",
    ),
    Topic(
        "cars",
        "Cars and vehicles: driving, engines, electric cars, car reviews, traffic, motorcycles "
        "and road trips.",
    ),
    # Sports
    Topic(
        "football",
        "Football and soccer: matches, goals, teams, players, coaches, the league, referees, "
        "penalties, the stadium and the season.",
    ),
    Topic(
        "basketball",
        "Basketball: NBA, players, points, dunks, three-pointers, courts, playoffs and coaches.",
    ),
    Topic(
        "sports",
        "Other sports and athletics: tennis, golf, cycling, swimming, boxing, the Olympics, "
        "athletes, races and championships.",
    ),
    Topic(
        "gaming",
        "Video games: gamers, consoles, PC games, levels, streaming gameplay, esports and game "
        "releases.",
    ),
    # Culture
    Topic(
        "movies",
        "Movies and television: films, actors, directors, series, episodes, cinema, streaming "
        "shows and reviews.",
    ),
    Topic(
        "music",
        "Music: songs, albums, bands, singers, concerts, guitar, lyrics, musicians and recording.",
    ),
    Topic(
        "art",
        "Art and design: painting, drawing, sculpture, artists, museums, galleries, "
        "illustration and creativity.",
    ),
    Topic(
        "books",
        "Books and literature: novels, authors, writing, reading, stories, poetry and publishing.",
    ),
    Topic(
        "photography",
        "Photography and video making: cameras, lenses, lighting, editing, shots and filming.",
    ),
    Topic(
        "comedy",
        "Comedy and humor: jokes, stand-up, funny stories, sketches, laughter and pranks.",
    ),
    # Formats
    Topic(
        "tutorial",
        "A tutorial or how-to guide: step by step instructions, first do this, then click, "
        "install, set up, follow along and learn how.",
    ),
    Topic(
        "product review",
        "A product review: unboxing, pros and cons, price, features, quality, whether it is "
        "worth buying, comparisons and ratings.",
    ),
    Topic(
        "news",
        "News reporting: breaking news, reporters, headlines, announcements, officials said, "
        "today's events and updates.",
    ),
)


# Calibration of raw cosine similarities (MiniLM-L6 embeddings of a transcript vs "label.
# description") into a confidence in [0, 1]. Raw cosines depend on the text's register: a
# dense finance explainer is 0.15 similar to *every* label, a chatty cooking video 0.0.
# So the score is the margin over the median label's similarity, rescaled so that a margin
# of CALIBRATION_LOW (typical of related-but-wrong labels) maps to 0 and
# CALIBRATION_LOW + CALIBRATION_SPAN to 1. A margin of 0.25 lands on 0.5, the default
# min_confidence: on our labelled passages the right label scores 0.8-1.0 and the runner-up
# 0.3-0.55 (a neighbouring subject such as economy for a finance text).
CALIBRATION_LOW = 0.10
CALIBRATION_SPAN = 0.30


def calibrate(similarities: np.ndarray) -> np.ndarray:
    """Map cosine similarities to every label (last axis) to confidences in [0, 1]."""
    margin = similarities - np.median(similarities, axis=-1, keepdims=True)
    return np.clip((margin - CALIBRATION_LOW) / CALIBRATION_SPAN, 0.0, 1.0)

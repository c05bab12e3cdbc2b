"""How the code is laid out: the mail engine knows no feature; modules stay
small (300 lines under app/, 500 a test module)."""

import glob
import os

from app.testing import ROOT


def test_mail_engine_knows_no_feature_and_modules_stay_small():
    engine = os.path.join(ROOT, 'app', 'outbox')
    for name in os.listdir(engine):
        if name.endswith('.py'):
            with open(os.path.join(engine, name), encoding='utf-8') as f:
                source = f.read()
            assert 'app.auth' not in source and 'User' not in source, name
    for folder, _, files in os.walk(os.path.join(ROOT, 'app')):
        for name in files:
            if name.endswith('.py'):
                with open(os.path.join(folder, name), encoding='utf-8') as f:
                    assert len(f.readlines()) <= 300, name
    test_modules = glob.glob(os.path.join(ROOT, 'tests', '*.py'))
    for path in [os.path.join(ROOT, 'tests.py'), *test_modules]:
        with open(path, encoding='utf-8') as f:
            assert len(f.readlines()) <= 500, path

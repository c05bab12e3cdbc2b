"""Your data in a real browser (issue 26): download the export, then delete
the account and bring it back with the emailed link."""

import io
import json
import re
import zipfile

import pytest

from app.testing.browser import browser_login, new_page, proven_live_server, seed_people

RESTORE = re.compile(r'https?://[^\s"<]+(/restore_account/[\w.-]+)')


@pytest.fixture
def server(make_app):
    server = proven_live_server(make_app)
    yield server
    server.stop()


@pytest.mark.browser
def test_download_the_export_then_delete_and_restore_the_account(
    browser, server, smtp, tmp_path
):
    seed_people(server.app)
    page = new_page(browser, server, accept_downloads=True)
    browser_login(page, 'bob')
    page.wait_for_url('**/index')
    page.goto('/settings')
    page.click('text=Download your data')
    with page.expect_download() as info:
        page.click('text=Download your data (ZIP)')
    download = info.value
    assert re.fullmatch(
        r'microblog-bob-\d{4}-\d{2}-\d{2}\.zip', download.suggested_filename
    )
    path = tmp_path / 'export.zip'
    download.save_as(path)
    archive = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    posts = json.loads(archive.read('posts.json'))
    assert [p['body'] for p in posts] == [f'Post {i} by bob' for i in range(3)]
    assert json.loads(archive.read('followers.json')) == [{'username': 'alice'}]

    page.goto('/settings')
    page.click('text=Delete your account')
    page.fill('input[name=confirm]', 'bobby')
    page.click('input[value="Delete my account"]')
    page.wait_for_selector('text=exactly as shown')
    page.fill('input[name=confirm]', 'bob')
    page.click('input[value="Delete my account"]')
    page.wait_for_url('**/login')
    page.wait_for_selector('text=Your account is deleted')
    assert page.goto('/user/bob').status == 200  # signed out: the sign-in page
    browser_login(page, 'bob')
    page.wait_for_url('**/deletion_scheduled')
    page.wait_for_selector('text=Send the restore link again')

    message = smtp.take('scheduled for deletion', 'bob@example.com')
    link = RESTORE.search(message.get_body(('plain',)).get_content())[1]
    page.goto(link)
    page.wait_for_url('**/restore_account/confirm')
    page.click('input[value=Confirm]')
    page.wait_for_selector('text=your account is restored')
    browser_login(page, 'bob')
    page.wait_for_url('**/index')
    page.goto('/user/bob')
    page.wait_for_selector('text=Post 0 by bob')
    page.goto('/security_log')
    page.wait_for_selector('text=Account deletion cancelled: account restored')
    page.wait_for_selector('text=Your data was downloaded')
    assert page.watch.console_errors == [] and page.watch.foreign_requests == []
    page.context.close()

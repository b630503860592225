package org.fedcart.app;

/** One line for the user about what happened: information, or an error worth their attention. */
final class Notice {
    final String text;
    final boolean error;

    Notice(String text, boolean error) {
        this.text = text;
        this.error = error;
    }

    static Notice error(String text) {
        return new Notice(text, true);
    }
}

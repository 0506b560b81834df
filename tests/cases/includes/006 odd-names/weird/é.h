/* utf8 */

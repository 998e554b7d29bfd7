"""What the docstring examples print, as PyTorch prints it (written by ``python tests/test_docs.py
--write``; ``numbapool._docs`` puts them in the docstrings)."""

OUTPUTS = {'adaptive_avg_pool1d': {'backward': '[0.5, 1.0, 0.5]',
                         'forward': '[0.5, 1.5]',
                         'repr': 'AdaptiveAvgPool1d(output_size=2)'},
 'adaptive_avg_pool2d': {'backward': '[0.25, 0.5, 0.25, 0.5, 1.0, 0.5, 0.25, 0.5, '
                                     '0.25]',
                         'forward': '[2.0, 3.0, 5.0, 6.0]',
                         'repr': 'AdaptiveAvgPool2d(output_size=2)'},
 'adaptive_avg_pool3d': {'backward': '[0.125, 0.25, 0.125, 0.25, 0.5, 0.25, 0.125, '
                                     '0.25, 0.125, 0.25, 0.5, 0.25, 0.5, 1.0, 0.5, '
                                     '0.25, 0.5, 0.25, 0.125, 0.25, 0.125, 0.25, 0.5, '
                                     '0.25, 0.125, 0.25, 0.125]',
                         'forward': '[6.5, 7.5, 9.5, 10.5, 15.5, 16.5, 18.5, 19.5]',
                         'repr': 'AdaptiveAvgPool3d(output_size=2)'},
 'adaptive_max_pool1d': {'backward': '[0.0, 1.0, 1.0]',
                         'forward': '[1.0, 2.0]',
                         'repr': 'AdaptiveMaxPool1d(output_size=2)'},
 'adaptive_max_pool2d': {'backward': '[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]',
                         'forward': '[4.0, 5.0, 7.0, 8.0]',
                         'repr': 'AdaptiveMaxPool2d(output_size=2)'},
 'adaptive_max_pool3d': {'backward': '[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, '
                                     '0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, '
                                     '0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]',
                         'forward': '[13.0, 14.0, 16.0, 17.0, 22.0, 23.0, 25.0, 26.0]',
                         'repr': 'AdaptiveMaxPool3d(output_size=2)'},
 'avg_pool1d': {'backward': '[0.5, 1.0, 0.5]',
                'forward': '[0.5, 1.5]',
                'repr': 'AvgPool1d(kernel_size=(2,), stride=(1,), padding=(0,))'},
 'avg_pool2d': {'backward': '[0.25, 0.5, 0.25, 0.5, 1.0, 0.5, 0.25, 0.5, 0.25]',
                'forward': '[2.0, 3.0, 5.0, 6.0]',
                'repr': 'AvgPool2d(kernel_size=2, stride=1, padding=0)'},
 'avg_pool3d': {'backward': '[0.125, 0.25, 0.125, 0.25, 0.5, 0.25, 0.125, 0.25, 0.125, '
                            '0.25, 0.5, 0.25, 0.5, 1.0, 0.5, 0.25, 0.5, 0.25, 0.125, '
                            '0.25, 0.125, 0.25, 0.5, 0.25, 0.125, 0.25, 0.125]',
                'forward': '[6.5, 7.5, 9.5, 10.5, 15.5, 16.5, 18.5, 19.5]',
                'repr': 'AvgPool3d(kernel_size=2, stride=1, padding=0)'},
 'fractional_max_pool2d': {'backward': '[5, 7, 13, 15]',
                           'forward': '[5.0, 7.0, 13.0, 15.0]',
                           'repr': 'FractionalMaxPool2d()'},
 'fractional_max_pool3d': {'backward': '[21, 23, 29, 31, 53, 55, 61, 63]',
                           'forward': '[21.0, 23.0, 29.0, 31.0, 53.0, 55.0, 61.0, '
                                      '63.0]',
                           'repr': 'FractionalMaxPool3d()'},
 'lp_pool1d': {'backward': '[0.0, 1.4472, 0.8944]',
               'forward': '[1.0, 2.2361]',
               'repr': 'LPPool1d(norm_type=2, kernel_size=2, stride=1, '
                       'ceil_mode=False)'},
 'lp_pool2d': {'backward': '[0.0, 0.3436, 0.2949, 0.8744, 2.0779, 1.1401, 0.5721, '
                           '1.2315, 0.6447]',
               'forward': '[5.099, 6.7823, 10.4881, 12.4097]',
               'repr': 'LPPool2d(norm_type=2, kernel_size=2, stride=1, '
                       'ceil_mode=False)'},
 'lp_pool3d': {'backward': '[0.0, 0.0836, 0.0796, 0.2313, 0.5902, 0.3522, 0.1996, '
                           '0.4474, 0.2453, 0.5909, 1.2602, 0.664, 1.409, 2.9387, '
                           '1.5208, 0.7765, 1.6005, 0.8206, 0.3924, 0.8053, 0.4117, '
                           '0.8464, 1.7271, 0.8785, 0.4441, 0.9029, 0.4579]',
               'forward': '[22.8035, 25.1396, 30.0666, 32.619, 45.8694, 48.5798, '
                          '54.037, 56.7803]',
               'repr': 'LPPool3d(norm_type=2, kernel_size=2, stride=1, '
                       'ceil_mode=False)'},
 'max_pool1d': {'backward': '[0.0, 1.0, 1.0]',
                'forward': '[1.0, 2.0]',
                'repr': 'MaxPool1d(kernel_size=2, stride=1, padding=0, dilation=1, '
                        'ceil_mode=False)'},
 'max_pool2d': {'backward': '[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]',
                'forward': '[4.0, 5.0, 7.0, 8.0]',
                'repr': 'MaxPool2d(kernel_size=2, stride=1, padding=0, dilation=1, '
                        'ceil_mode=False)'},
 'max_pool3d': {'backward': '[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, '
                            '0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, '
                            '1.0, 1.0, 0.0, 1.0, 1.0]',
                'forward': '[13.0, 14.0, 16.0, 17.0, 22.0, 23.0, 25.0, 26.0]',
                'repr': 'MaxPool3d(kernel_size=2, stride=1, padding=0, dilation=1, '
                        'ceil_mode=False)'},
 'max_unpool1d': {'backward': '[0, 1]',
                  'forward': '[1, 3]',
                  'repr': 'MaxUnpool1d(kernel_size=(2,), stride=(2,), padding=(0,))'},
 'max_unpool2d': {'backward': '[0, 1, 2, 3]',
                  'forward': '[5, 7, 13, 15]',
                  'repr': 'MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, '
                          '0))'},
 'max_unpool3d': {'backward': '[0, 1, 2, 3, 4, 5, 6, 7]',
                  'forward': '[21, 23, 29, 31, 53, 55, 61, 63]',
                  'repr': 'MaxUnpool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2), '
                          'padding=(0, 0, 0))'}}
